#!/bin/sh
# bench/analysis/cachegrind.sh — instructions and simulated cache misses
# per round trip of a bench echo server under load: the server runs under
# cachegrind, the C load generator outside it, CONNS connections for
# SECONDS. Deterministic enough to tell small changes apart where the
# timed table cannot (bench/README.md).
#
#   sh bench/analysis/cachegrind.sh [ROOT [SECONDS [CONNS [IMPL]]]]
#
# ROOT is a built checkout (default: this one), so that two checkouts can
# be compared: git worktree add /tmp/A HEAD~1 && make -C /tmp/A. IMPL is
# the server: sockit (the default, bench/servers/sockit.lua), luasocket,
# luv or cqueues (bench/servers/), corofloor (bench/analysis/), or
# loop-raw / loop-conn (bench/analysis/layers.lua: sockit with fewer of
# its layers): the same measure for each, side by side. Prints the round
# trips, then per round trip: instructions, D1 misses, LL data misses
# (simulated: 32 KiB L1, 1 MiB LL: the size of this machine's L2 per
# core). Needs valgrind;
# builds the load generator into bench/out if it is not there. Bounded:
# the server runs under timeout(1) and is interrupted when the load ends.
# CG_OUT=FILE keeps cachegrind's counts for cg_annotate; CG_LUA=PATH runs
# another interpreter (a Lua built with -g names the VM's functions).
# The counts cover the whole server process, its set-up and exit too.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=$(cd "${1:-$here}" && pwd)
SECONDS_=${2:-10}
CONNS=${3:-1000}
IMPL=${4:-sockit}
command -v valgrind >/dev/null || { echo "cachegrind.sh: valgrind is not installed" >&2; exit 1; }
layer=       # layers.lua takes its layer before the servers' arguments
case $IMPL in
  sockit|luasocket|luv|cqueues) server=$here/bench/servers/$IMPL.lua ;;
  corofloor) server=$here/bench/analysis/corofloor.lua ;;
  loop-raw|loop-conn) server=$here/bench/analysis/layers.lua layer=${IMPL#loop-} ;;
  *) echo "cachegrind.sh: IMPL is sockit, luasocket, luv, cqueues, corofloor, loop-raw or loop-conn" >&2; exit 2 ;;
esac
mkdir -p "$here/bench/out"
LOADGEN=$here/bench/out/loadgen
[ -x "$LOADGEN" ] || cc -O2 -Wall -o "$LOADGEN" "$here/bench/c/loadgen.c"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sockit-cg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/?.so;;" \
  timeout -s INT -k 5 $((SECONDS_ + 120)) valgrind --tool=cachegrind --cache-sim=yes \
  --I1=32768,8,64 --D1=32768,8,64 --LL=1048576,16,64 \
  --cachegrind-out-file=${CG_OUT:-/dev/null} ${CG_LUA:-lua5.4} "$server" $layer echo tcp 127.0.0.1:0 \
  > "$tmp/addr" 2> "$tmp/cg" &
pid=$!
i=0
while [ ! -s "$tmp/addr" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
"$LOADGEN" rt "tcp:$(head -1 "$tmp/addr")" "$CONNS" "$SECONDS_" > "$tmp/lg"
# the servers serve until stopped: an interrupt ends them, and cachegrind
# writes its counts on the way out (a terminate if one ignores it)
kill -INT $pid 2>/dev/null || true
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
rt=$(sed -n 's/.*roundtrips=\([0-9]*\).*/\1/p' "$tmp/lg")
count () { sed -n "s/.*$1 *\([0-9,]*\).*/\1/p" "$tmp/cg" | head -1 | tr -d ,; }
ir=$(count "I *refs:"); d1=$(count "D1 *misses:"); ll=$(count "LLd misses:")
[ -n "$rt" ] && [ -n "$ir" ] || { echo "cachegrind.sh: no counts (server: $IMPL)" >&2; cat "$tmp/cg" >&2; exit 1; }
echo "$ROOT ($IMPL): $rt round trips at $CONNS connections"
awk -v rt="$rt" -v ir="$ir" -v d1="$d1" -v ll="$ll" 'BEGIN {
  printf "per round trip: %.0f instructions, %.1f D1 misses, %.1f LL data misses\n",
         ir / rt, d1 / rt, ll / rt }'
