#!/usr/bin/env bash
# Installs what nommu-ci needs on a Debian host, idempotently: Debian packages, the default
# kernel source (Debian's linux-source-7.2, fetched with apt's own tools into a private state
# directory so the host's package set is untouched), and the npm packages. `npm start` and
# `npm test` run it first; a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${NOMMU_CI_CACHE:-/var/cache/nommu-ci}
SOURCE_PKG=${NOMMU_CI_SOURCE_PKG:-linux-source-7.2}
# Suites that carry linux-source-7.2 (the host may be older, e.g. bookworm).
SOURCE_SUITES=${NOMMU_CI_SOURCE_SUITES:-"forky trixie-backports"}
MIRROR=${NOMMU_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: toolchain for kernel and selftest builds, the sandbox, Redis.
PKGS=(build-essential flex bison bc ccache bubblewrap redis-server python3 xz-utils
      libelf-dev git util-linux rsync musl-tools)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { log "need root to install: ${missing[*]}"; exit 1; }
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The kernel source, unpacked once, read-only to the service.
src="$CACHE/src/$SOURCE_PKG"
if [ ! -f "$src/Makefile" ]; then
  apt_dir="$CACHE/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$CACHE/src"
  : > "$apt_dir/sources.list"
  for s in $SOURCE_SUITES; do echo "deb $MIRROR $s main" >> "$apt_dir/sources.list"; done
  touch "$apt_dir/status"
  aptopts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
           -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
           -o "Dir::State::Status=$apt_dir/status" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  log "fetching $SOURCE_PKG from Debian ($SOURCE_SUITES)"
  apt-get "${aptopts[@]}" update -q >/dev/null
  version=$(apt-cache "${aptopts[@]}" policy "$SOURCE_PKG" | awk '/Candidate:/ {print $2}')
  [ -n "$version" ] && [ "$version" != "(none)" ] || { log "$SOURCE_PKG not found in $SOURCE_SUITES"; exit 1; }
  (cd "$apt_dir/archives" && apt-get "${aptopts[@]}" download -q "$SOURCE_PKG=$version" >/dev/null)
  deb=$(ls "$apt_dir"/archives/"${SOURCE_PKG}"_*.deb | tail -n 1)
  tmp=$(mktemp -d "$CACHE/src/.unpack.XXXXXX")
  log "unpacking $deb"
  dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$SOURCE_PKG.tar.xz" | xz -dc -T0 | tar -x -C "$tmp"
  echo "$version" > "$src.version"
  mv "$tmp/$SOURCE_PKG" "$src"
  rmdir "$tmp"
  chmod -R a+rX,go-w "$src"
  rm -f "$deb"
fi

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
