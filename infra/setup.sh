#!/usr/bin/env bash
# Installs what nommu-ci needs on a Debian host, idempotently: Debian packages, the kernel
# sources of the catalogue (Debian's linux-source-7.2 and linux-source-7.3, fetched with apt's own
# tools into a private state directory so the host's package set is untouched), and the npm
# packages. `npm start` and `npm test` run it first; a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${NOMMU_CI_CACHE:-/var/cache/nommu-ci}
# The catalogue's Debian sources (shared/src/kernels.ts), each with the suites that carry it (the
# host may be older, e.g. bookworm): "package:suite suite...".
KERNEL_SOURCES=("linux-source-7.2:forky trixie-backports" "linux-source-7.3:experimental")
MIRROR=${NOMMU_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'setup: %s\n' "$*" >&2; }
. infra/apt.sh

# Debian packages: toolchain for kernel and selftest builds, the sandbox, Redis; lcov (geninfo,
# genhtml) for coverage jobs.
need_packages build-essential flex bison bc ccache bubblewrap redis-server python3 xz-utils \
  libelf-dev git util-linux rsync musl-tools lcov
# A real Patchwork server for the patchwork bot's test (infra/testdeps/patchwork/).
need_packages python3-django python3-djangorestframework python3-django-filters

# `npm test` only (setup.sh --test): a real browser for the dashboard's tests, driven by
# playwright-core (which downloads none), and a font for its screenshots.
if [ "${1:-}" = --test ]; then need_packages chromium fonts-dejavu-core fonts-noto-color-emoji; fi

# The kernel sources, each unpacked once, read-only to the service. Each is looked up in its own
# suites only (trixie-backports also carries a linux-source-7.3, a different version).
for k in "${KERNEL_SOURCES[@]}"; do
  pkg=${k%%:*}
  suites=${k#*:}
  src="$CACHE/src/$pkg"
  [ -f "$src/Makefile" ] && continue
  apt_dir="$CACHE/apt"
  mkdir -p "$CACHE/src"
  log "fetching $pkg from Debian ($suites)"
  lines=()
  for s in $suites; do lines+=("deb $MIRROR $s main"); done
  private_apt "$apt_dir" "${lines[@]}"
  version=$(apt-cache "${APT_OPTS[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')
  [ -n "$version" ] && [ "$version" != "(none)" ] || { log "$pkg not found in $suites"; exit 1; }
  (cd "$apt_dir/archives" && apt-get "${APT_OPTS[@]}" download -q "$pkg=$version" >/dev/null)
  deb=$(ls "$apt_dir"/archives/"${pkg}"_*.deb | tail -n 1)
  tmp=$(mktemp -d "$CACHE/src/.unpack.XXXXXX")
  log "unpacking $deb"
  dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$pkg.tar.xz" | xz -dc -T0 | tar -x -C "$tmp"
  echo "$version" > "$src.version"
  mv "$tmp/$pkg" "$src"
  rmdir "$tmp"
  chmod -R a+rX,go-w "$src"
  rm -f "$deb"
done

# BusyBox for the root filesystems of userspace tests (no-MMU build, static-pie, from Debian's
# source package); does nothing once built.
kernel-images/rootfs/build-busybox.sh "$CACHE/busybox"

mkdir -p "$CACHE/ccache"
[ -f "$CACHE/ccache/ccache.conf" ] || printf 'max_size = 20G\ncompiler_check = content\n' > "$CACHE/ccache/ccache.conf"

# npm packages, when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund >/dev/null
fi
