#!/usr/bin/env bash
# Retention's two figures, in one run (release; wrk and the relays share this machine's cores):
# 1. its cost to durable posts: two relays on fresh stores side by side, one keeping everything
#    and one keeping 1,000 messages per channel (so every check expires something), posts of
#    1 KB to 10 channels with wrk (2 threads, 32 connections, SECONDS each), alternating, ROUNDS
#    rounds; prints each round and the medians' ratio;
# 2. the disk it keeps: one relay that received TOTAL posts on one channel keeping KEEP, beside
#    one that received KEEP keeping everything; prints what each data directory takes on disk
#    (allocated, as du counts it) after a clean stop.
# Installs wrk from Debian when missing.
# Usage: benches/retention.sh [SECONDS] [ROUNDS] [TOTAL] [KEEP]   (defaults: 8 3 1000000 100000;
# TOTAL 0 skips the second part)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
rounds="${2:-3}"
total="${3:-1000000}"
keep="${4:-100000}"
target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
cargo build --release --quiet --bin claude-codex-relay
relay="$target/release/claude-codex-relay"

. benches/posts.sh

echo "== posts/s, retention off and on (1,000 per channel, 10 channels), $rounds rounds of ${seconds}s"
post_script 10 >"$work/posts.lua"
start off 18101
start on 18102 CLAUDE_CODEX_RETENTION_MESSAGES=1000
alternate 18101 18102 off on
expired=$(grep -c messages_expired "$work/on/log/claude_codex.log" || true)
printf 'expiries the retained relay appended: %s\n' "$expired"
kill "${pids[@]}"; wait 2>/dev/null || true; pids=()

# post PORT COUNT: COUNT posts to one channel (a few more: those in flight when wrk is stopped).
post() {
  post_script 1 >"$work/count.lua"
  local started=$SECONDS
  wrk -t2 -c32 -d1h -s "$work/count.lua" "http://127.0.0.1:$1" >/dev/null & local load=$!
  until [ "$(last_id "$1")" -ge "$2" ]; do sleep 0.2; done
  kill "$load"; wait "$load" 2>/dev/null || true
  echo "$(last_id "$1") posts in $((SECONDS - started)) s"
}

last_id() {
  curl -s "http://127.0.0.1:$1/api/channels" | python3 -c 'import json,sys; print(max(c["last_id"] for c in json.load(sys.stdin)["details"]))'
}

count() {
  curl -s "http://127.0.0.1:$1/api/channels" | python3 -c 'import json,sys; print(sum(c["count"] for c in json.load(sys.stdin)["details"]))'
}

[ "$total" -gt 0 ] || exit 0
echo "== disk: $total posts keeping $keep, beside $keep posts keeping everything"
start kept 18103 CLAUDE_CODEX_RETENTION_MESSAGES="$keep"
start small 18104
printf 'kept: %s\n' "$(post 18103 "$total")"
printf 'small: %s\n' "$(post 18104 "$keep")"
# Let the last check expire what is over, and search reclaim its segments.
for _ in $(seq 60); do [ "$(count 18103)" -le "$keep" ] && break; sleep 1; done
sleep 5
printf 'messages kept: %s and %s\n' "$(count 18103)" "$(count 18104)"
kill -TERM "${pids[@]}"; wait 2>/dev/null || true; pids=()
for name in kept small; do
  data="$work/$name/data"
  printf '%-6s data dir %s bytes on disk (db %s, blocks %s of %s apparent, search %s)\n' "$name" \
    "$(du -s -B1 "$data" | cut -f1)" "$(du -s -B1 "$data/db" | cut -f1)" \
    "$(du -B1 "$data/blocks" | cut -f1)" "$(stat -c %s "$data/blocks")" "$(du -s -B1 "$data/search" | cut -f1)"
done
kept=$(du -s -B1 "$work/kept/data" | cut -f1); small=$(du -s -B1 "$work/small/data" | cut -f1)
printf 'ratio: %s\n' "$(awk -v a="$kept" -v b="$small" 'BEGIN {printf "%.2fx", a / b}')"
