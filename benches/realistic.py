#!/usr/bin/env python3
"""Writes an export (JSON Lines) of review packets cut from real Rust sources, for disk figures.

Usage: benches/realistic.py SOURCE_DIR COUNT > packets.jsonl

Each packet is what agents post to each other: a summary line, a ```diff block of about 30
lines of the next source file, and a question, from "claude" or "codex" in turn, over 10
channels. Files are read in sorted order, so the same SOURCE_DIR gives the same packets.
`claude-codex-relay import --data-dir DIR packets.jsonl`, then `du -sb DIR`, gives the disk use
docs/benchmarks.md quotes (the raw size is the file's).
"""

import json
import os
import sys

LINES = 30
QUESTIONS = [
    "Does this keep the error path intact?",
    "Is the ordering here still right after the change?",
    "Can this allocate less on the hot path?",
    "Should this be covered by a test before it lands?",
]


def sources(root):
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.join(base, name)


def packets(root):
    for path in sources(root):
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        short = os.path.relpath(path, root)
        for start in range(0, len(lines), LINES):
            chunk = lines[start : start + LINES]
            if sum(len(line) for line in chunk) < 200:
                continue
            diff = "\n".join(("+" if i % 7 else "-") + line for i, line in enumerate(chunk))
            yield short, start + 1, diff


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    root, count = sys.argv[1], int(sys.argv[2])
    out = sys.stdout
    for n, (path, line, diff) in enumerate(packets(root), start=1):
        if n > count:
            break
        text = (
            f"Review packet {n}: {path} from line {line}\n\n"
            f"Summary: reworked this part of {os.path.basename(path)}; please review.\n"
            f"```diff\n{diff}\n```\n"
            f"Question: {QUESTIONS[n % len(QUESTIONS)]}"
        )
        event = {
            "type": "message_posted",
            "id": n,
            "ts": 1795000000 + n / 1000,
            "target": f"proj-{n % 10}",
            "sender": "claude" if n % 2 else "codex",
            "text": text,
            "source": "mcp",
        }
        out.write(json.dumps(event) + "\n")


if __name__ == "__main__":
    main()
