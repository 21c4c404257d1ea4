#!/usr/bin/env bash
# Build rxrpc.ko with the patches in kernel/patches for one Debian kernel.
#
# Usage: kernel/build.sh --headers DIR [--source TARBALL] [--out DIR] [--no-rxgk]
#
#   --headers  the kernel's build tree, /lib/modules/RELEASE/build: Debian's
#              linux-headers-RELEASE (with its -common package and linux-kbuild)
#   --source   Debian's kernel source tarball: by default $RXRPC_LINUX_SOURCE
#              or /usr/src/linux-source-X.Y.tar.xz from the package
#              linux-source-X.Y (X.Y is the kernel's series). Only net/rxrpc
#              is taken from it.
#   --out      where rxrpc.ko is written (default: the current directory);
#              the build tree is OUT/work
#   --no-rxgk  build RxGK only if the kernel's own configuration does
#
# The tarball and the headers must come from the same Debian package version
# (read from their changelogs under usr/share/doc beside usr/src). Fixes from
# later kernels that the series lacks (kernel/backports/X.Y, if any), then the
# patches of the kernel's series (kernel/patches/X.Y) are applied without fuzz,
# kernel/src/fix_version.c is compiled in (it gives the module a version,
# /sys/module/rxrpc/version), and the module is built with the kernel's own
# kbuild and compiler. RxGK (net/rxrpc/rxgk*.c, Linux 6.16 on) is compiled in
# where the kernel left it out (CONFIG_RXGK unset) but ships the Kerberos 5
# crypto it needs as modules or built in (CONFIG_CRYPTO_KRB5, _KRB5ENC): so
# Debian's 7.x; the module then needs krb5.ko loaded first (modprobe does it).
# Progress goes to stderr; on failure the last line
# says why. Used by dkms (kernel/dkms.conf) and scripts/kernel/build-module.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "build.sh: $*" >&2; }
die() { log "$*"; exit 1; }

headers='' source='' out=. rxgk=auto
usage="usage: build.sh --headers DIR [--source TARBALL] [--out DIR] [--no-rxgk]"
while (($#)); do
  case $1 in
    --no-rxgk) rxgk=no; shift; continue ;;
    --headers) headers=${2:-} ;;
    --source) source=${2:-} ;;
    --out) out=${2:-} ;;
    *) die "$usage" ;;
  esac
  (($# >= 2)) || die "$1 needs a value"
  shift 2
done
[[ -n $headers ]] || die "$usage"
[[ -f $headers/include/generated/utsrelease.h ]] ||
  die "$headers is not a kernel build tree (no include/generated/utsrelease.h); install linux-headers-\$(uname -r)"
headers=$(cd "$headers" && pwd -P)
release=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$headers/include/generated/utsrelease.h")
series=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<<"$release")
[[ -n $series ]] || die "cannot tell the kernel series of release '$release'"
patches=$here/patches/$series
if ! compgen -G "$patches/*.patch" >/dev/null; then
  have=$(cd "$here/patches" && echo *)
  die "no patches for Linux $series (kernel $release) in $here/patches; there are patches for: $have"
fi
source=${source:-${RXRPC_LINUX_SOURCE:-/usr/src/linux-source-$series.tar.xz}}
[[ -f $source ]] || die "no kernel source at $source; install it with: apt-get install linux-source-$series"

# debian_version FILE...: the version in the first line of the first Debian
# changelog found ("linux (6.1.192-3) bookworm-security; ...").
debian_version() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || continue
    zcat "$f" | sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p'
    return
  done
}
hroot=${headers%/usr/src/*}
sroot=${source%/usr/src/*}
common=$(sed -n 's|^include .*/\(linux-headers-[^/]*\)/Makefile$|\1|p' "$headers/Makefile" | head -n1)
kernel_version=$(debian_version "$hroot/usr/share/doc/linux-headers-$release/changelog.Debian.gz" \
  "$hroot/usr/share/doc/$common/changelog.Debian.gz")
source_version=$(debian_version "$sroot/usr/share/doc/linux-source-$series/changelog.Debian.gz")
[[ -n $kernel_version ]] || die "cannot tell the Debian version of the headers in $headers (no changelog in $hroot/usr/share/doc)"
[[ -n $source_version ]] || die "cannot tell the Debian version of $source (no $sroot/usr/share/doc/linux-source-$series/changelog.Debian.gz)"
[[ $kernel_version == "$source_version" ]] ||
  die "linux-source-$series is $source_version but the kernel $release is $kernel_version; install linux-source-$series=$kernel_version"

mkdir -p "$out"
out=$(cd "$out" && pwd -P)
work=$out/work
rm -rf "$work"
mkdir -p "$work"
log "taking net/rxrpc from $source ($source_version)"
top=$(basename "$source")
top=${top%.tar*}
tar -xf "$source" -C "$work" --strip-components=1 "$top/net/rxrpc" ||
  die "no net/rxrpc in $source"
for p in "$here/backports/$series"/*.patch "$patches"/*.patch; do
  [[ -f $p ]] || continue
  log "applying ${p#"$here/"}"
  patch -d "$work" -p1 -F0 -N -s --no-backup-if-mismatch <"$p" ||
    die "${p#"$here/"} does not apply to Debian $source_version; it needs refreshing for it"
done
cp "$here/src/fix_version.c" "$work/net/rxrpc/fix_version.c"
echo 'rxrpc-y += fix_version.o' >>"$work/net/rxrpc/Makefile"
config=$headers/.config
if [[ $rxgk == auto && -f $work/net/rxrpc/rxgk.c ]] && grep -qx '# CONFIG_RXGK is not set' "$config" &&
  grep -Eqx 'CONFIG_CRYPTO_KRB5=[ym]' "$config" && grep -Eqx 'CONFIG_CRYPTO_KRB5ENC=[ym]' "$config"; then
  log "adding RxGK (CONFIG_RXGK is unset in $release, but its Kerberos 5 crypto is there)"
  printf '%s\n' 'ccflags-y += -DCONFIG_RXGK=1' 'rxrpc-y += rxgk.o rxgk_app.o rxgk_kdf.o' >>"$work/net/rxrpc/Makefile"
fi

log "building rxrpc.ko for $release"
make -C "$headers" M="$work/net/rxrpc" -j"$(nproc)" modules >&2 ||
  die "the build of rxrpc.ko for $release failed (see above)"
module=$work/net/rxrpc/rxrpc.ko
vermagic=$(modinfo -F vermagic "$module" 2>/dev/null || strings "$module" | sed -n 's/^vermagic=//p')
[[ ${vermagic%% *} == "$release" ]] || die "the module's vermagic '$vermagic' does not name the kernel $release"
# As Debian installs its modules: without debugging information.
strip --strip-debug -o "$out/rxrpc.ko" "$module"
log "built $out/rxrpc.ko (vermagic: $vermagic)"
