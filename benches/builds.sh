#!/usr/bin/env bash
# Durable posts/s of two builds of the relay side by side, each on a fresh store, alternating
# (release binaries built beforehand, for example one from before a change copied aside): wrk
# with 2 threads and 32 keep-alive connections, posts of 1 KB to 10 channels, SECONDS each,
# ROUNDS rounds; prints each round, the medians' ratio (B / A) and each data directory's size
# on disk after a clean stop. wrk and the relays share this machine's cores.
# Usage: benches/builds.sh A_BINARY B_BINARY [SECONDS] [ROUNDS]   (defaults: 8 5)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
a="$(realpath "$1")"; b="$(realpath "$2")"
cd "$(dirname "$0")/.."
seconds="${3:-8}"
rounds="${4:-5}"
. benches/posts.sh

post_script 10 >"$work/posts.lua"
relay="$a" start a 18111
relay="$b" start b 18112
alternate 18111 18112 A B
kill -TERM "${pids[@]}"; wait 2>/dev/null || true; pids=()
for name in a b; do
  printf '%s: data dir %s bytes on disk (db %s)\n' "$name" \
    "$(du -s -B1 "$work/$name/data" | cut -f1)" "$(du -s -B1 "$work/$name/data/db" | cut -f1)"
done
