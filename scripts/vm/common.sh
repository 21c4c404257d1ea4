# shellcheck shell=bash
# Helpers shared by kernel.sh, run.sh and scripts/kernel (sourced, not run).

# need PACKAGE...: make sure the Debian packages are installed. As root they are
# installed with apt-get; otherwise the caller is told what to install.
need() {
  local pkg missing=()
  for pkg in "$@"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) == installed ]] ||
      missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if ((EUID != 0)); then
    echo "vm: missing packages; install them with: apt-get install ${missing[*]}" >&2
    exit 125
  fi
  echo "vm: installing ${missing[*]}" >&2
  {
    apt-get install -y --no-install-recommends "${missing[@]}" ||
      { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
  } >&2 || { echo "vm: could not install ${missing[*]}" >&2; exit 125; }
}

# debian_apt SUITE DIR: a private apt for SUITE in DIR -- its own sources,
# lists, cache and (empty) dpkg status, so the host's apt configuration and
# state are neither used nor changed. Sets apt_opts for apt-get and apt-cache.
debian_apt() {
  local suite=$1 apt=$2 dist dists
  local mirror=http://deb.debian.org/debian keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  case $suite in
    bookworm) dists=("$mirror bookworm" "http://deb.debian.org/debian-security bookworm-security") ;;
    bookworm-backports | trixie-backports) dists=("$mirror $suite") ;;
    *) return 1 ;;
  esac
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts.d"
  # Signatures are checked against Debian's archive keyring (it carries the
  # bookworm and trixie keys that sign these suites).
  for dist in "${dists[@]}"; do echo "deb [signed-by=$keyring] $dist main"; done >"$apt/sources.list"
  touch "$apt/status"
  apt_opts=(
    -o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts.d"
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/status"
    -o "Dir::Cache=$apt/cache" -o APT::Architectures=amd64 -o APT::Default-Release=
    -o "APT::Sandbox::User=$(id -un)" -o Acquire::Languages=none
  )
}
