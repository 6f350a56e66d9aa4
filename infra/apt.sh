# Sourced by infra/setup.sh and kernel-images/rootfs/build-busybox.sh: Debian packages the host
# must have, and apt with a private state directory (its own sources list, lists, cache and
# status), so that packages and sources the host's lists do not carry can be fetched without
# touching the host's apt configuration or package set.

# need_packages PKG...: installs those of PKG... that are not installed (as root).
need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || { echo "need root to install: ${missing[*]}" >&2; return 1; }
  echo "installing Debian packages: ${missing[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# private_apt DIR LINE...: apt state in DIR with the LINEs as its sources.list, lists updated;
# sets APT_OPTS, the options that make apt-get and apt-cache use it.
private_apt() {
  local dir=$1
  shift
  mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  printf '%s\n' "$@" > "$dir/sources.list"
  touch "$dir/status"
  APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir" -o "Dir::Cache::archives=$dir/archives"
            -o "Dir::State::Status=$dir/status" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${APT_OPTS[@]}" update -q >/dev/null
}
