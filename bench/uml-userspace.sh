#!/bin/bash
# Benchmark (run by hand): system call and process start-up latency of user programs on no-MMU
# UML, on MMU UML in its seccomp and its ptrace mode, and natively, with one program
# (uml-userspace/syscall-bench.c, musl static-pie, which all four can run) and one kernel tree:
# Debian's linux-source-7.2 with our series applied, built twice (x86_64_nommu_defconfig and
# x86_64_defconfig, each with hostfs and devtmpfs). The program is init of each kernel.
#
#   bench/uml-userspace.sh [WORKDIR]   (default $NOMMU_CI_CACHE/bench-userspace; builds are reused)
#
# NOMMU_LINUX=<linux> and MMU_LINUX=<linux> use kernels already built instead (each with hostfs
# and devtmpfs), e.g. the worker's cached kselftest kernels in $NOMMU_CI_CACHE/builds; on a
# loaded machine two cold default-config builds take an hour.
#
# Run it on an idle machine: every figure is a wall-clock mean. The builds run under nice -n 19,
# the measurements at the caller's priority. Natively the program also measures a host SIGSYS
# round trip (seccomp SECCOMP_RET_TRAP, handler, rt_sigreturn): the floor of a no-MMU system call.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
CACHE=${NOMMU_CI_CACHE:-/var/cache/nommu-ci}
SRC=$CACHE/src/linux-source-7.2
work=${1:-$CACHE/bench-userspace}
[ -f "$SRC/Makefile" ] || { echo "uml-userspace: no kernel source at $SRC (run npm test or npm start once)" >&2; exit 2; }
mkdir -p "$work"

# The patched tree, made by check-series (a hardlink copy with the series applied, as the worker
# makes it) only when the series changed, so the builds below stay incremental.
nommu_linux=${NOMMU_LINUX:-$work/nommu/linux}
mmu_linux=${MMU_LINUX:-$work/mmu/linux}
if [ -z "${NOMMU_LINUX:-}" ] || [ -z "${MMU_LINUX:-}" ]; then
	series=$(cd "$repo/kernel-images/nommu" && cat series | xargs sha256sum | sha256sum | cut -c1-16)
	tree=$work/apply/src
	if [ ! -f "$tree/Makefile" ] || [ "$(cat "$work/tree.series" 2>/dev/null)" != "$series" ]; then
		CHECK_SERIES_WORKDIR=$work/apply nice -n 19 "$repo/kernel-images/bin/check-series" "$SRC" >"$work/apply.log" 2>&1 ||
			{ cat "$work/apply.log" >&2; exit 1; }
		echo "$series" > "$work/tree.series"
	fi

	build() {	# dir, defconfig
		local out=$work/$1
		if [ ! -f "$out/.config" ]; then
			nice -n 19 make -s -C "$tree" ARCH=um O="$out" "$2"
			"$tree/scripts/config" --file "$out/.config" -e HOSTFS -e DEVTMPFS -e DEVTMPFS_MOUNT
			nice -n 19 make -s -C "$tree" ARCH=um O="$out" olddefconfig
		fi
		echo "uml-userspace: building $1 ($2)" >&2
		nice -n 19 make -s -C "$tree" ARCH=um O="$out" CC="ccache gcc" -j"$(nproc)" linux >"$work/$1.build.log" 2>&1 ||
			{ tail -n 20 "$work/$1.build.log" >&2; exit 1; }
	}
	[ -n "${NOMMU_LINUX:-}" ] || build nommu x86_64_nommu_defconfig
	[ -n "${MMU_LINUX:-}" ] || build mmu x86_64_defconfig
fi

root=$work/root
rm -rf "$root" && mkdir -p "$root/dev"
# musl brings no kernel UAPI headers; the host's (linux-libc-dev) give the seccomp filter's.
"$repo/kernel-images/rootfs/musl-cc" -O2 -Wall -fPIE -static-pie \
	-idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include \
	-o "$root/init" "$here/uml-userspace/syscall-bench.c"

run() {	# label, command...
	local label=$1; shift
	echo "uml-userspace: $label" >&2
	timeout 600 "$@" 2>&1 | tr -d '\r' | awk -v l="$label" '$1 == "bench" { print l, $2, $4, $5 }' > "$work/$label.txt"
	[ -s "$work/$label.txt" ] || { echo "uml-userspace: $label printed no result" >&2; exit 1; }
}
boot=(mem=256M rw rootfstype=hostfs "hostfs=$root" init=/init con=null con0=fd:0,fd:1)
run native "$root/init"
run nommu "$nommu_linux" "${boot[@]}"
run mmu-seccomp "$mmu_linux" seccomp=on "${boot[@]}"
run mmu-ptrace "$mmu_linux" seccomp=off "${boot[@]}"

echo
echo "no-MMU: $nommu_linux; MMU: $mmu_linux"
echo "$(nproc) cores, $(uname -r) host, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
for col in 3 4; do
	[ $col = 3 ] && echo "ns per operation, mean over the run" || echo "ns per operation, fastest batch (what preemption by other host load leaves out)"
	cat "$work"/{nommu,mmu-seccomp,mmu-ptrace,native}.txt | awk -v c=$col '
		{ v[$2, $1] = $c; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
		END {
			printf "%-20s %12s %12s %12s %12s\n", "operation", "no-MMU", "MMU seccomp", "MMU ptrace", "native"
			for (i = 0; i < n; i++) { o = order[i]
				printf "%-20s %12s %12s %12s %12s\n", o, v[o, "nommu"], v[o, "mmu-seccomp"], v[o, "mmu-ptrace"], v[o, "native"] }
		}'
	awk -v c=$col '$2 == "getpid" { g[$1] = $c } $2 == "sigsys-roundtrip" { s = $c }
		END {
			printf "getpid on no-MMU: %.1fx the host SIGSYS round trip, %.1fx native getpid; MMU seccomp getpid %.1fx no-MMU\n\n",
				g["nommu"] / s, g["nommu"] / g["native"], g["mmu-seccomp"] / g["nommu"]
		}' "$work"/{nommu,mmu-seccomp,native}.txt
done
