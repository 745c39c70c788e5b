#!/usr/bin/env bash
# HTTP load with wrk on loopback (2 threads, 32 connections, SECONDS each), in one run: the bare
# warp ceiling (examples/bare_warp.rs), the relay's empty poll, pages of 200 messages of 1 KB
# (random channel and start anywhere in the log, and among the newest messages) on the bench
# data set of MESSAGES messages over 10 channels, and durable posts into a fresh store. Also
# prints how long the relay took to start on the data set and its memory after the load.
# Installs wrk from Debian when missing. wrk and the servers share this machine's cores.
# Usage: benches/load.sh [SECONDS] [MESSAGES]   (defaults: 10 10000; MESSAGES: 10000 or 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
messages="${2:-10000}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
cargo build --release --quiet --bin claude-codex-relay --example bare_warp
data="$target/bench-data/$messages-10"
if [ ! -e "$data/READY" ]; then
  # The store bench generates its data sets on first use; a filter that matches nothing stops
  # it there.
  if [ "$messages" = 10000 ]; then
    RELAY_BENCH_QUICK=1 cargo bench --quiet --bench store -- generate-only >/dev/null
  else
    cargo bench --quiet --bench store -- generate-only >/dev/null
  fi
fi
[ -e "$data/READY" ] || { echo "no bench data set of $messages messages" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$target/release/examples/bare_warp" 18090 & pids+=($!)
started=$(date +%s%N)
(cd "$work" && exec "$target/release/claude-codex-relay" --port 18091 --data-dir "$data") >"$work/relay.out" & pids+=($!)
relay_pid=$!
until grep -q "listening on" "$work/relay.out" 2>/dev/null; do sleep 0.01; done
printf '%-32s %s ms (%s)\n' "relay start-up" $(( ($(date +%s%N) - started) / 1000000 )) "$(head -1 "$work/relay.out")"
(cd "$work" && exec "$target/release/claude-codex-relay" --port 18092 --data-dir posts) >/dev/null & pids+=($!)
sleep 1

last=$messages
cat > "$work/page.lua" <<LUA
request = function()
  local path = string.format("/api/messages?target=chan-%03d&since_id=%d&limit=200", math.random(0, 9), math.random(0, $last - 3000))
  return wrk.format("GET", path)
end
LUA
cat > "$work/recent.lua" <<LUA
request = function()
  local path = string.format("/api/messages?target=chan-%03d&since_id=%d&limit=200", math.random(0, 9), $last - math.random(0, 2000))
  return wrk.format("GET", path)
end
LUA
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"target":"proj-x","sender":"load","text":"' .. string.rep("x", 200) .. '"}'
LUA

run() {
  local name="$1"; shift
  local out rps p50 p99
  out="$(wrk -t2 -c32 -d"${seconds}s" --latency "$@")"
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  printf '%-32s %s requests/s (p50 %s, p99 %s)\n' "$name" "$rps" "$p50" "$p99"
}
run "bare warp small JSON"          http://127.0.0.1:18090/poll
run "relay empty poll"              "http://127.0.0.1:18091/api/messages?target=chan-001&since_id=$((last - 9))&limit=200"
run "relay page 200 x 1 KB, any"    -s "$work/page.lua" http://127.0.0.1:18091
run "relay page 200 x 1 KB, recent" -s "$work/recent.lua" http://127.0.0.1:18091
run "relay durable posts (32 conn)" -s "$work/post.lua" http://127.0.0.1:18092/api/messages
printf '%-32s %s\n' "relay memory after the load" "$(grep -E 'VmRSS|VmHWM' /proc/$relay_pid/status | tr -s ' \t' ' ' | paste -sd ' ')"
