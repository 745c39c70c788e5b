#!/usr/bin/env bash
# Credentials on against off, in one run: three relays on fresh stores side by side, one open
# (credentials off), one with a principal whose credential every request carries (on), and the
# same over HTTPS (a P-256 certificate made here); wrk (2 threads, 32 keep-alive connections,
# SECONDS each) alternates between them, ROUNDS rounds, for durable posts (the principal's
# posts leave the sender out) and the empty poll. wrk and the relays share this machine's cores.
# Usage: benches/credentials.sh [SECONDS] [ROUNDS]   (defaults: 8 2)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
rounds="${2:-2}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
cargo build --release --quiet --bin claude-codex-relay
relay="$target/release/claude-codex-relay"
work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=relay \
  -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
  -keyout key.pem -out cert.pem 2>/dev/null
# Each relay in a folder of its own: its usage log and archive are its own files.
mkdir off on tls
credential="$(cd on && "$relay" principals add load --data-dir data | tail -1)"
cp -r on/data tls/data

(cd off && exec "$relay" --port 18101 --data-dir data) >off.out & pids+=($!)
(cd on && exec "$relay" --port 18102 --data-dir data) >on.out & pids+=($!)
(cd tls && CLAUDE_CODEX_TLS_CERT=../cert.pem CLAUDE_CODEX_TLS_KEY=../key.pem exec "$relay" --port 18103 --data-dir data) >tls.out & pids+=($!)
for out in off.out on.out tls.out; do
  until grep -q "listening on" "$out" 2>/dev/null; do sleep 0.05; done
done

cat > post-off.lua <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"target":"proj-x","sender":"load","text":"' .. string.rep("x", 200) .. '"}'
LUA
cat > post-on.lua <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $credential"
wrk.body = '{"target":"proj-x","text":"' .. string.rep("x", 200) .. '"}'
LUA
cat > poll-on.lua <<LUA
wrk.headers["Authorization"] = "Bearer $credential"
LUA
# The same request shape without a credential: a header of the same length, so both runs go
# through wrk's script path and carry the same bytes.
cat > poll-off.lua <<LUA
wrk.headers["X-Padding-Hdr"] = "Bearer $credential"
LUA

# One wrk run: requests/s.
rate() { wrk -t2 -c32 -d"${seconds}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
poll="/api/messages?target=empty&since_id=0"
for round in $(seq 1 "$rounds"); do
  printf 'round %s posts/s   off %s  on %s  on over https %s\n' "$round" \
    "$(rate -s post-off.lua http://127.0.0.1:18101/api/messages)" \
    "$(rate -s post-on.lua http://127.0.0.1:18102/api/messages)" \
    "$(rate -s post-on.lua https://127.0.0.1:18103/api/messages)"
  printf 'round %s polls/s   off %s  on %s  on over https %s\n' "$round" \
    "$(rate -s poll-off.lua "http://127.0.0.1:18101$poll")" \
    "$(rate -s poll-on.lua "http://127.0.0.1:18102$poll")" \
    "$(rate -s poll-on.lua "https://127.0.0.1:18103$poll")"
done
# What the runs stored: every acknowledged post under the principal's name.
curl -s -H "Authorization: Bearer $credential" "http://127.0.0.1:18102/api/messages?target=proj-x&limit=1" |
  grep -q '"sender":"load"' || { echo "the credentialed relay did not store the posts as load" >&2; exit 1; }
