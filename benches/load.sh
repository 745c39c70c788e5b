#!/usr/bin/env bash
# HTTP load with wrk on loopback (2 threads, 32 connections, 10 s each), in one run:
#   the bare warp ceiling (examples/bare_warp.rs), the relay's empty poll, random pages of 200
#   messages of 1 KB (the 10k bench data set), and durable posts into a fresh store.
# Installs wrk from Debian when missing. wrk and the servers share this machine's cores.
# Usage: benches/load.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
cargo build --release --quiet --bin claude-codex-relay --example bare_warp
data="$target/bench-data/10000-10"
[ -e "$data/READY" ] || RELAY_BENCH_QUICK=1 cargo test --release --quiet --bench store >/dev/null

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$target/release/examples/bare_warp" 18090 & pids+=($!)
(cd "$work" && exec "$target/release/claude-codex-relay" --port 18091 --data-dir "$data") >/dev/null & pids+=($!)
(cd "$work" && exec "$target/release/claude-codex-relay" --port 18092 --data-dir posts) >/dev/null & pids+=($!)
sleep 2

cat > "$work/page.lua" <<'LUA'
request = function()
  local path = string.format("/api/messages?target=chan-%03d&since_id=%d&limit=200", math.random(0, 9), math.random(0, 7000))
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
  local rps
  rps="$(wrk -t2 -c32 -d"${seconds}s" --latency "$@" | awk '/Requests\/sec/ {print $2} /^ +50%/ {p50=$2} END {}')"
  printf '%-32s %s requests/s\n' "$name" "$rps"
}
run "bare warp small JSON"          http://127.0.0.1:18090/poll
run "relay empty poll"              "http://127.0.0.1:18091/api/messages?target=chan-001&since_id=9991&limit=200"
run "relay page 200 x 1 KB"         -s "$work/page.lua" http://127.0.0.1:18091
run "relay durable posts (32 conn)" -s "$work/post.lua" http://127.0.0.1:18092/api/messages
