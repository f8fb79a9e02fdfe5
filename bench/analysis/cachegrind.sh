#!/bin/sh
# bench/analysis/cachegrind.sh — instructions and simulated cache misses
# per round trip of the sockit bench echo server (bench/servers/sockit.lua)
# under load: the server runs under cachegrind, the C load generator
# outside it, CONNS connections for SECONDS. Deterministic enough to tell
# small changes apart where the timed table cannot (bench/README.md).
#
#   sh bench/analysis/cachegrind.sh [ROOT [SECONDS [CONNS]]]
#
# ROOT is a built checkout (default: this one), so that two checkouts can
# be compared: git worktree add /tmp/A HEAD~1 && make -C /tmp/A. Prints
# the round trips, then per round trip: instructions, D1 misses, LL data
# misses (simulated: 32 KiB L1, 1 MiB LL). Needs valgrind; builds the
# load generator into bench/out if it is not there. Bounded: the server
# ends itself SECONDS + 8 s after it starts, and runs under timeout(1).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=$(cd "${1:-$here}" && pwd)
SECONDS_=${2:-10}
CONNS=${3:-1000}
command -v valgrind >/dev/null || { echo "cachegrind.sh: valgrind is not installed" >&2; exit 1; }
mkdir -p "$here/bench/out"
LOADGEN=$here/bench/out/loadgen
[ -x "$LOADGEN" ] || cc -O2 -Wall -o "$LOADGEN" "$here/bench/c/loadgen.c"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sockit-cg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cat > "$tmp/wrap.lua" <<EOF
local sockit = require "sockit"
sockit.spawn(function () sockit.sleep($SECONDS_ + 8) os.exit(0) end)
assert(loadfile("$here/bench/servers/sockit.lua"))("echo", "tcp", "127.0.0.1:0")
EOF
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/?.so;;" \
  timeout -k 2 $((SECONDS_ + 120)) valgrind --tool=cachegrind --cache-sim=yes \
  --I1=32768,8,64 --D1=32768,8,64 --LL=1048576,16,64 \
  --cachegrind-out-file=/dev/null lua5.4 "$tmp/wrap.lua" > "$tmp/addr" 2> "$tmp/cg" &
i=0
while [ ! -s "$tmp/addr" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
"$LOADGEN" rt "tcp:$(head -1 "$tmp/addr")" "$CONNS" "$SECONDS_" > "$tmp/lg"
wait
rt=$(sed -n 's/.*roundtrips=\([0-9]*\).*/\1/p' "$tmp/lg")
count () { sed -n "s/.*$1 *\([0-9,]*\).*/\1/p" "$tmp/cg" | head -1 | tr -d ,; }
ir=$(count "I *refs:"); d1=$(count "D1 *misses:"); ll=$(count "LLd misses:")
echo "$ROOT: $rt round trips at $CONNS connections"
awk -v rt="$rt" -v ir="$ir" -v d1="$d1" -v ll="$ll" 'BEGIN {
  printf "per round trip: %.0f instructions, %.1f D1 misses, %.1f LL data misses\n",
         ir / rt, d1 / rt, ll / rt }'
