#!/usr/bin/env python3
"""Redaction-to-erasure time at 1M messages, release build.

Usage: benches/erasure.py RELAY_BINARY WORKDIR [N]   (TARGET=ID picks the message; IMPORT_ONLY=1
stops after building WORKDIR/data, which later runs reuse)
Builds WORKDIR/data from an export of N messages (10 channels, ~1 KB each, each holding the
token zq<ID>zq), starts the relay, waits for search to index everything, redacts one message
(by default near the end: sealed in a block, in the archive), and times, from the DELETE, how
long the blocks file and the archive files keep its token, and until the search index's
meta.json shows the deletion committed and its segment rewritten (the index's files hold no
raw token to grep). sled's files are searched too (a sealed record holds no token), and the
message's key in data/message-keys is read right after the answer. Figures:
docs/benchmarks.md, "Redaction to erasure at 1M messages".
"""
import json, os, socket, subprocess, sys, time, urllib.request

binary, work = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
os.makedirs(work, exist_ok=True)
data = os.path.join(work, "data")
env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDE_CODEX_")}

def run(*args):
    started = time.monotonic()
    subprocess.run([binary, *args], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started

if not os.path.isdir(data):
    export = os.path.join(work, "export.jsonl")
    filler = ("+    let value = compute(input, options);  // review packet line\n" * 16)[:900]
    with open(export, "w") as out:
        for i in range(1, n + 1):
            m = {"type": "message_posted", "id": i, "ts": 1.795e9 + i / 1000, "target": f"proj-{i % 10}",
                 "sender": "claude" if i % 2 else "codex", "text": f"packet {i} token zq{i}zq\n{filler}", "source": "mcp"}
            out.write(json.dumps(m) + "\n")
    print(f"import of {n}: {run('import', export, '--data-dir', 'data'):.1f} s", flush=True)
    os.remove(export)
if os.environ.get("IMPORT_ONLY"):
    sys.exit(0)

sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
base = f"http://127.0.0.1:{port}"
relay = subprocess.Popen([binary, "--port", str(port), "--data-dir", "data"], cwd=work, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def get(path):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return json.load(r)

try:
    started = time.monotonic()
    while True:
        try:
            if get(f"/api/search?q=zq{n}zq")["total"] == 1:
                break
        except Exception:
            pass
        time.sleep(0.5)
    print(f"relay up and search caught up with {n} messages after {time.monotonic() - started:.1f} s", flush=True)
    target = int(os.environ.get("TARGET", n - 10_000))
    token = f"zq{target}zq".encode()

    def holders():
        found = set()
        for root, _, files in os.walk(work):
            for f in files:
                path = os.path.join(root, f)
                if f.endswith(".jsonl"):
                    continue
                try:
                    with open(path, "rb") as fh:
                        if token in fh.read():
                            kind = ("blocks" if f == "blocks" else "archive" if "channel_messages" in f
                                    else "search" if "/search/" in path else "sled" if "/data/db/" in path else path)
                            found.add(kind)
                except OSError:
                    pass
        return found

    before = holders()
    print(f"before: message {target} is in {sorted(before)}", flush=True)
    request = urllib.request.Request(f"{base}/api/messages/{target}", data=b'{"reason":"measure"}', method="DELETE",
                                     headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    with urllib.request.urlopen(request, timeout=60) as r:
        assert r.status == 200
    acked = time.monotonic() - t0
    print(f"redaction acknowledged after {acked * 1000:.0f} ms", flush=True)
    with open(os.path.join(data, "message-keys"), "rb") as keys:
        keys.seek(16 * target)
        key = keys.read(16)
    print("its key: " + ("erased (zeros) at the answer" if key == bytes(16) else "still there"), flush=True)
    # The index's files hold no raw token to grep (its store is compressed): its erasure is done
    # when its commit recorded the deletion and the merge that drops it has replaced that segment.
    meta = os.path.join(data, "search", "meta.json")
    def deletions():
        return '"num_deleted_docs"' in open(meta).read()
    seen_deleted = False
    while time.monotonic() - t0 < 600:
        if deletions():
            seen_deleted = True
        elif seen_deleted:
            break
        time.sleep(0.05)
    print(f"search: deletion committed and its segment rewritten within {time.monotonic() - t0:.2f} s"
          if seen_deleted else "search: no deletion seen in meta.json", flush=True)
    left, gone = set(before), {}
    while left and time.monotonic() - t0 < 600:
        now = holders()
        for kind in list(left):
            if kind not in now:
                gone[kind] = time.monotonic() - t0
                left.discard(kind)
        time.sleep(0.2)
    for kind, t in sorted(gone.items(), key=lambda kv: kv[1]):
        print(f"erased from {kind} within {t:.1f} s of the DELETE", flush=True)
    print(f"still holding it after 600 s: {sorted(left)}" if left else "erased everywhere", flush=True)
finally:
    relay.terminate()
    relay.wait()
