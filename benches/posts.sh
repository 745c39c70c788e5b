# What the benches that post with wrk share (sourced, from the repository's root): a work
# folder removed on exit, relays started in it (`$relay`, the binary), the wrk script of the
# posts, a rate, a median and rounds of two relays in turn. Installs wrk from Debian when
# missing.
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# start NAME PORT [VAR=VALUE...]: a relay in its own folder (its own logs), on a fresh store.
start() {
  local name="$1" port="$2"; shift 2
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env "$@" "$relay" --port "$port" --data-dir data) >"$work/$name/out" 2>&1 &
  pids+=($!)
  until grep -q "listening on" "$work/$name/out" 2>/dev/null; do sleep 0.01; done
}

# The posts: 1 KB of varied text (64 texts of random letters), to one of CHANNELS channels.
post_script() {
  local channels="$1"
  cat <<LUA
local texts = {}
math.randomseed(7)
for i = 1, 64 do
  local t = {}
  for j = 1, 1000 do t[j] = string.char(97 + math.random(0, 25)) end
  texts[i] = table.concat(t)
end
request = function()
  local body = '{"target":"chan-' .. math.random(0, $channels - 1) .. '","sender":"load","text":"' .. texts[math.random(1, 64)] .. '"}'
  return wrk.format("POST", "/api/messages", {["Content-Type"] = "application/json"}, body)
end
LUA
}

rate() {
  wrk -t2 -c32 -d"${seconds}s" -s "$work/posts.lua" "http://127.0.0.1:$1" | awk '/Requests\/sec/ {print $2}'
}

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# alternate PORT_A PORT_B NAME_A NAME_B: $rounds rounds of posts to each in turn ($work/posts.lua),
# each round printed, then the medians and their ratio (B / A).
alternate() {
  local round ra rb
  : >"$work/a.rates"; : >"$work/b.rates"
  for round in $(seq "$rounds"); do
    ra=$(rate "$1"); rb=$(rate "$2")
    echo "$ra" >>"$work/a.rates"; echo "$rb" >>"$work/b.rates"
    printf 'round %s: %s %s/s, %s %s/s\n' "$round" "$3" "$ra" "$4" "$rb"
  done
  ra=$(median <"$work/a.rates"); rb=$(median <"$work/b.rates")
  printf 'medians: %s %s/s, %s %s/s: %s\n' "$3" "$ra" "$4" "$rb" "$(awk -v x="$rb" -v y="$ra" 'BEGIN {printf "%.2fx", x / y}')"
}
