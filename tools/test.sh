#!/bin/sh
# tools/test.sh — run every spec under spec/ with busted on Lua 5.4.
#
# Works from `make test` (which exports LUA_PATH/LUA_CPATH) and standalone
# (`sh tools/test.sh` from anywhere): the paths are set to this repo here.
# Extra arguments go to busted (e.g. `sh tools/test.sh spec/core_dgram_spec.lua`
# or `--filter=EOF`).
#
# Output: one line per test (spec/support/summary.lua), and as the last line
# `N passed, N failed[, N skipped]`. Exits non-zero if anything failed or
# busted itself did not finish.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
# SOCKIT_CORE: another directory holding sockit/core.so (make sanitize)
export LUA_CPATH="${SOCKIT_CORE:-$root}/?.so;;"

if [ ! -f "${SOCKIT_CORE:-$root}/sockit/core.so" ]; then
    echo "test.sh: sockit/core.so is not built (run make first)"
fi

log=$(mktemp "${TMPDIR:-/tmp}/sockit-test.XXXXXX") || exit 1
trap 'rm -f "$log" "$log.rc"' EXIT INT TERM

# busted's --lua re-executes busted under lua5.4 (the `busted` script's
# own interpreter is Debian's default `lua`, which is 5.1).
if [ $# -eq 0 ]; then set -- spec; fi
{ busted --lua=lua5.4 --output=spec/support/summary.lua "$@" 2>&1; echo $? > "$log.rc"; } | tee "$log"
rc=$(cat "$log.rc" 2>/dev/null || echo 1)

summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
last=$(tail -n 1 "$log")
failed=$(printf '%s\n' "$summary" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
passed=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p')

if [ -z "$summary" ]; then
    # busted died before its suite ended (a crash, a signal): say so, count
    # the tests it did report, and the crash as one more failure
    ok=$(grep -c '^ok ' "$log")
    bad=$(grep -cE '^(FAIL|ERROR) ' "$log")
    echo "test.sh: busted exited with status $rc before printing a summary"
    echo "$ok passed, $((bad + 1)) failed"
    exit 1
fi
if [ "$rc" != 0 ] && [ "${failed:-0}" = 0 ]; then
    echo "test.sh: busted exited with status $rc although no test failed"
    echo "$passed passed, 1 failed"
    exit 1
fi
if [ "$last" != "$summary" ]; then
    # something printed after the summary (a child process, a __gc):
    # repeat the summary so it stays the last line
    echo "$summary"
fi
if [ "$rc" != 0 ] || [ "${failed:-0}" != 0 ]; then
    exit 1
fi
exit 0
