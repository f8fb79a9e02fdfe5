#!/bin/sh
# tools/sanitize.sh — the whole spec suite against a core built with
# AddressSanitizer and UndefinedBehaviorSanitizer (make sanitize).
#
# lua5.4 itself is not instrumented, so the sanitizer runtimes are
# preloaded into it. A wrapper named lua5.4, first on PATH, does that for
# busted and for every child lua5.4 the specs start; other programs the
# specs run directly (python3, socat, curl) are left alone. Any report
# fails the run: ASan and UBSan stop the process (halt_on_error), and the
# report files are searched as well.
#
# LeakSanitizer is off: the preload is inherited by everything lua5.4
# starts (sh, mktemp, ...), whose own exit-time leaks it would report.
# Leaks are make valgrind's job (memcheck, per process, definite leaks).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

dir="$root/build/sanitize"
bin="$dir/bin"
mkdir -p "$bin"
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
real=$(command -v lua5.4) || { echo "sanitize: lua5.4 not found"; echo "0 passed, 1 failed"; exit 1; }
cat > "$bin/lua5.4" <<WRAP
#!/bin/sh
LD_PRELOAD="$asan $ubsan" exec "$real" "\$@"
WRAP
chmod +x "$bin/lua5.4"

export PATH="$bin:$PATH"
export SOCKIT_CORE="$dir"
# spec/faults_spec.lua: the fault-injection cores built with the sanitizers
export SOCKIT_FAULTS_CORE="$dir/faults" SOCKIT_FAULTS_POLL_CORE="$dir/faults-poll"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:log_path=$dir/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$dir/ubsan"
rm -f "$dir"/asan.* "$dir"/ubsan.*

log="$dir/test.log"
sh tools/test.sh "$@" | tee "$log"
rc=$(tail -n 1 "$log" | grep -qE '^[0-9]+ passed, 0 failed' && echo 0 || echo 1)
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
reports=$(ls "$dir"/asan.* "$dir"/ubsan.* 2>/dev/null)
if [ -n "$reports" ]; then
    echo "sanitize: sanitizer reports were written:"
    for f in $reports; do echo "== $f"; head -n 40 "$f"; done
    passed=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    echo "${passed:-0} passed, 1 failed"
    exit 1
fi
echo "sanitize: no AddressSanitizer or UBSan report"
echo "${summary:-0 passed, 1 failed}"
exit "$rc"
