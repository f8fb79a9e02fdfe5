#!/bin/sh
# bench/deps.sh — the Debian packages `make bench` needs beyond the build's
# (tools/deps.sh): the peers sockit is measured against, wrk, and the
# tools that pin and bound the child processes.
#
# Fast when everything is there. As root, installs what is missing;
# otherwise prints the command to run and exits 1.
set -u

pkgs="lua-socket lua-luv lua-cqueues wrk util-linux coreutils gcc"

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

echo "bench deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -q update >/dev/null || { echo "bench deps: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086  # word splitting of the list is intended
apt-get -q install -y $missing >/dev/null || {
    echo "bench deps: apt-get install$missing failed" >&2
    exit 1
}
