#!/bin/bash
# Benchmark (run by hand): what ccache costs on a cold cache, per mode, in the worker's layout
# (tree at /src, build at /build, in bwrap). Rebuilds mm/ and lib/ of a copy of a base build
# directory with plain gcc, ccache in its default mode, and ccache in depend mode (what the
# worker uses, see worker/src/stages/build.ts), each with an empty cache.
#
#   bench/ccache-modes.sh [BASE_BUILD_DIR]   (default: the newest base under builds/)
set -euo pipefail
CACHE=${NOMMU_CI_CACHE:-/var/cache/nommu-ci}
SRC=$CACHE/src/linux-source-7.2
BASE=${1:-$(ls -td "$CACHE"/builds/*/ | grep -v '\.lock' | head -n 1)}
[ -f "$BASE/.config" ] || { echo "ccache-modes: no base build directory at $BASE" >&2; exit 2; }
work=$(mktemp -d "$CACHE/bench-ccache.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -a "$BASE" "$work/build"
mkdir -p "$work/tmp"

run() {	# label, CC, env...
	local label=$1 cc=$2; shift 2
	find "$work/build/mm" "$work/build/lib" -name '*.o' -delete
	rm -rf "$work/ccache"; mkdir -p "$work/ccache"
	local t0; t0=$(date +%s%N)
	bwrap --bind / / --dev /dev --bind "$SRC" /src --bind "$work/build" /build --chdir /build \
		env CCACHE_DIR="$work/ccache" CCACHE_TEMPDIR="$work/tmp" "$@" \
		make -s ARCH=um O=/build -C /src CC="$cc" -j"$(nproc)" mm/ lib/ > "$work/$label.log" 2>&1 ||
		{ echo "$label: make failed:"; tail -n 5 "$work/$label.log"; return 1; }
	printf '%-28s %6.1f s\n' "$label" "$(( ($(date +%s%N) - t0) / 1000000 ))e-3"
}

echo "mm/ and lib/ of $(basename "$BASE"), cold caches, $(nproc) cores"
run "gcc" gcc
run "ccache (default mode)" "ccache gcc"
run "ccache (depend mode)" "ccache gcc" CCACHE_DEPEND=1
