#!/bin/bash
# build-busybox.sh - build the BusyBox of the no-MMU root filesystem
#
# Usage: kernel-images/rootfs/build-busybox.sh <cache-dir>
#
# A no-MMU kernel runs all programs in one address space, each wherever there is room, so it
# can only load programs that are position-independent and need no loader or shared library:
# static-pie (musl's rcrt1.o relocates the program itself at startup). Nor is there fork():
# BusyBox's NOMMU mode uses vfork() + exec instead, and drops what cannot work that way (ash,
# unshare); hush is the shell.
#
# Source: Debian's busybox source package (Debian's patches applied) of the host's release,
# fetched once into <cache-dir>/src with a private apt state, so the host's sources lists stay
# as they are; remove <cache-dir>/src to fetch a newer one. Builds in <cache-dir>/build, leaves
# <cache-dir>/busybox. Does nothing if that was built from the same source version by this same
# script. Compiles run under nice -n 19: kernel builds may share the machine.
set -euo pipefail

die() { echo "build-busybox: $*" >&2; exit 1; }
[ $# = 1 ] || die "usage: $0 <cache-dir>"
mkdir -p "$1"
cache=$(cd "$1" && pwd)
src=$cache/src build=$cache/build
script_hash=$(cat "$0" "$(dirname "$0")/musl-cc" "$(dirname "$0")/static-pie.specs" | sha256sum | cut -d' ' -f1)
if [ -x "$cache/busybox" ] && [ -f "$src.version" ] &&
   [ "$(cat "$cache/busybox.stamp" 2>/dev/null)" = "$(cat "$src.version") $script_hash" ]; then
	exit 0
fi

. "$(dirname "$0")/../../infra/apt.sh"
# libc6-dev (its linux-libc-dev) and gcc: kconfig's host tools, and the kernel headers below.
need_packages musl-tools dpkg-dev gcc libc6-dev

if [ ! -f "$src/Makefile" ]; then
	suite=${NOMMU_CI_BUSYBOX_SUITE:-$(. /etc/os-release && echo "$VERSION_CODENAME")}
	private_apt "$cache/apt" "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${NOMMU_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian} $suite main"
	rm -rf "$cache/fetch" && mkdir "$cache/fetch"
	(cd "$cache/fetch" && apt-get "${APT_OPTS[@]}" source -q busybox >/dev/null)
	dpkg-parsechangelog -l "$cache"/fetch/busybox-*/debian/changelog -S Version > "$src.version"
	rm -rf "$src" && mv "$cache"/fetch/busybox-*/ "$src" && rm -rf "$cache/fetch"
fi
version=$(cat "$src.version")

rm -rf "$build" && mkdir -p "$build/uapi"
# musl-cc: musl's gcc wrapper made to link -static-pie programs (see that script).
cc=$(cd "$(dirname "$0")" && pwd)/musl-cc
# musl ships no kernel headers (bookworm has no linux-musl-dev); the kernel's UAPI headers are
# libc-neutral, so give musl those from linux-libc-dev, and only those, after its own.
for d in linux asm-generic mtd; do ln -s "/usr/include/$d" "$build/uapi/$d"; done
ln -s /usr/include/x86_64-linux-gnu/asm "$build/uapi/asm"

# BusyBox's PIE option adds -fpie to every compile and $(ARCH_PIE) to the link.
mk() { nice -n 19 make -C "$src" O="$build" CC="$cc" ARCH_PIE=-static-pie "$@"; }
setopt() {
	sed -i "/^\(# \)\{0,1\}CONFIG_$1[= ]/d" "$build/.config"
	if [ "$2" = n ]; then echo "# CONFIG_$1 is not set"; else echo "CONFIG_$1=$2"; fi >> "$build/.config"
}
mk -s defconfig >/dev/null
setopt NOMMU y                # vfork() + exec only, never fork()
setopt STATIC n               # PIE depends on !STATIC; static comes from ARCH_PIE=-static-pie
setopt PIE y
setopt EXTRA_CFLAGS "\"-idirafter $build/uapi\""
setopt TC n                   # needs the CBQ definitions Linux 6.8+ removed from its UAPI headers
# Off in defconfig already; kept off: musl has no Sun RPC, and no SELinux or PAM for musl here.
setopt FEATURE_INETD_RPC n
setopt SELINUX n
setopt PAM n
mk oldconfig < <(yes "") >/dev/null
for o in NOMMU PIE; do grep -qx "CONFIG_$o=y" "$build/.config" || die "CONFIG_$o=y did not stick"; done
time mk -j"$(nproc)" >"$build/make.log" 2>&1 || { tail -n 30 "$build/make.log" >&2; die "build failed; see $build/make.log"; }

bb=$build/busybox
[[ $(readelf -h "$bb") =~ Type:\ +DYN ]] || die "not position-independent"
[[ ! $(readelf -d "$bb") =~ NEEDED ]] || die "needs shared libraries"
[[ ! $(readelf -l "$bb") =~ INTERP ]] || die "asks for a program interpreter"
applets=$("$bb" --list)
for a in sh hush echo cat ls grep sleep wc true false test mkdir mount; do
	grep -qx "$a" <<<"$applets" || die "applet $a missing"
done
mkdir "$build/bin" && "$bb" --install -s "$build/bin"
out=$(PATH=$build/bin "$bb" sh -c 'echo hi | cat; sleep 0 & wait; echo ok')
[ "$out" = "$(printf 'hi\nok')" ] || die "self-test printed: $out"

cp "$bb" "$cache/busybox.new" && mv "$cache/busybox.new" "$cache/busybox"
echo "$version $script_hash" > "$cache/busybox.stamp"
echo "build-busybox: $cache/busybox (busybox $version, $(stat -c %s "$cache/busybox") bytes)" >&2
