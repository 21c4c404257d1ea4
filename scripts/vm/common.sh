# shellcheck shell=bash
# Helpers shared by kernel.sh and run.sh (sourced, not run).

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
