#!/bin/sh
# tools/valgrind.sh — the whole spec suite with every lua5.4 process under
# valgrind memcheck (make valgrind): busted and each child lua5.4 the
# specs start, through a wrapper named lua5.4 first on PATH. Passes only
# with zero memcheck errors and zero definitely-lost bytes in every
# process, and the suite passing.
#
# VALGRIND_SPECS may name spec files (default: all of spec/). Timing
# specs scale their bounds with SOCKIT_SLOW (set here) where they can.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)"; echo "0 passed, 1 failed"; exit 1; }

dir="$root/build/valgrind"
bin="$dir/bin"
mkdir -p "$bin"
chmod 1777 "$dir"   # children run as nobody (EACCES specs) log here too
rm -f "$dir"/vg.*.log
real=$(command -v lua5.4) || { echo "valgrind: lua5.4 not found"; echo "0 passed, 1 failed"; exit 1; }
cat > "$bin/lua5.4" <<WRAP
#!/bin/sh
exec valgrind --quiet --tool=memcheck --error-exitcode=97 \\
  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \\
  --log-file="$dir/vg.%p.log" "$real" "\$@"
WRAP
chmod +x "$bin/lua5.4"
export PATH="$bin:$PATH"
export SOCKIT_SLOW=10
export SOCKIT_VALGRIND=1   # specs that valgrind's emulation cannot serve say so

log="$dir/test.log"
start=$(date +%s)
sh tools/test.sh ${VALGRIND_SPECS:-} | tee "$log"
secs=$(( $(date +%s) - start ))
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)

procs=$(ls "$dir"/vg.*.log 2>/dev/null | wc -l)
bad=""
for f in "$dir"/vg.*.log; do
    [ -s "$f" ] || continue           # --quiet: an empty log is a clean run
    if grep -qE 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|Invalid (read|write)|uninitialised|Conditional jump' "$f"; then
        bad="$bad $f"
    fi
done
echo "valgrind: $procs lua5.4 processes under memcheck in ${secs}s"
if [ -n "$bad" ]; then
    for f in $bad; do echo "== $f"; head -n 60 "$f"; done
    passed=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    echo "valgrind: memcheck errors or definite leaks in:$bad"
    echo "${passed:-0} passed, 1 failed"
    exit 1
fi
echo "valgrind: 0 errors, 0 bytes definitely lost"
echo "${summary:-0 passed, 1 failed}"
tail -n 1 "$log" | grep -qE '^[0-9]+ passed, 0 failed' || exit 1
exit 0
