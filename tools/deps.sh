#!/bin/sh
# tools/deps.sh — make sure the Debian packages that sockit's build, tests
# and demo need are installed.
#
# Fast when everything is there (one dpkg-query per package, no apt).
# As root, installs what is missing (apt-get update, then install);
# otherwise prints the command to run and exits 1.
#
# SOCKIT_APT_UPDATED=1 skips the `apt-get update` (.ci/run has just done it).
set -u

pkgs="lua5.4 liblua5.4-dev lua-busted lua-check luarocks socat iproute2 gcc make pkg-config clang libclang-rt-14-dev valgrind curl strace"

# python3: any python3 on PATH will do (the specs only use its socket
# module); Debian's package only when there is none.
if ! command -v python3 >/dev/null 2>&1; then
    pkgs="$pkgs python3"
fi

missing=""
for p in $pkgs; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
    esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install these first: sudo apt-get install$missing" >&2
    exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if [ "${SOCKIT_APT_UPDATED:-}" != 1 ]; then
    apt-get -q update >/dev/null || { echo "deps: apt-get update failed" >&2; exit 1; }
fi
# shellcheck disable=SC2086  # word splitting of the list is intended
apt-get -q install -y $missing >/dev/null || {
    echo "deps: apt-get install$missing failed" >&2
    exit 1
}
