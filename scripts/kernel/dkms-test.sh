#!/usr/bin/env bash
# Build the fixed rxrpc.ko with dkms (kernel/dkms.conf) as a Debian user would,
# for the kernel the test VM boots, and check the result.
#
# Usage: scripts/kernel/dkms-test.sh [SUITE]   (default bookworm)
#
# dkms is Debian's package (installed when missing, as root). The headers and
# source are the ones scripts/kernel/build-module.sh fetched for SUITE
# (unpacked, not installed; the source tarball cut down to net/rxrpc, with
# its package changelog beside it), passed as --kernelsourcedir and
# $RXRPC_LINUX_SOURCE. dkms works in private trees (its own, the source tree,
# and an install tree holding the stock module): /var/lib/dkms, /usr/src and
# /lib/modules are not touched. Exit status 0 when dkms built and installed
# (under updates/dkms) a module with the fix's version marker and the stock
# module's vermagic.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=scripts/vm/common.sh
. "$root/scripts/vm/common.sh"
log() { echo "dkms-test.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

suite=${1:-bookworm}
need dkms
fixed=$("$here/build-module.sh" "$suite") || die "cannot prepare the $suite kernel's sources"
info() { sed -n "s/^$1=//p" "$fixed/info"; }
release=$(info release) debian_version=$(info debian_version) series=$(info series)
marker=$(info marker) vermagic=$(info vermagic)
src=$(dirname "$fixed")/src-$debian_version
headers=$src/headers/usr/src/linux-headers-$release
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"$/\1/p' "$root/kernel/dkms.conf")
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$root/kernel/dkms.conf")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A private install tree holding the stock module, as /lib/modules/RELEASE does.
kernel=$("$root/scripts/vm/kernel.sh" "$suite")
stock=$(cpio -it --quiet <"$kernel/initrd.img" | grep '/net/rxrpc/rxrpc\.ko$' | head -n1)
mkdir -p "$tmp/dkms" "$tmp/src" "$tmp/lib"
(cd "$tmp/lib" && cpio -id --quiet "$stock" <"$kernel/initrd.img")
mkdir -p "$tmp/modules/$release/kernel/net/rxrpc"
mv "$tmp/lib/$stock" "$tmp/modules/$release/kernel/net/rxrpc/rxrpc.ko"
trees=(--dkmstree "$tmp/dkms" --sourcetree "$tmp/src" --installtree "$tmp/modules")
log "dkms install ./kernel -k $release (Debian $debian_version), as kernel/README.md says"
(cd "$root" && RXRPC_LINUX_SOURCE=$src/source/usr/src/linux-source-$series.tar.xz \
  dkms install "${trees[@]}" --no-depmod ./kernel -k "$release" --kernelsourcedir "$headers") >&2 ||
  die "dkms install failed (log: $(find "$tmp/dkms" -name make.log | head -n1))"
module=$(find "$tmp/modules/$release/updates" -name 'rxrpc.ko*' 2>/dev/null | head -n1)
[[ -n $module ]] || die "dkms installed no rxrpc.ko under updates/"
got_marker=$(modinfo -F version "$module")
got_magic=$(modinfo -F vermagic "$module")
[[ $got_marker == "$marker" ]] || die "the dkms module's version is '$got_marker', not '$marker'"
[[ $got_magic == "$vermagic" ]] || die "the dkms module's vermagic is '$got_magic', not the stock module's '$vermagic'"
log "ok: dkms installed $name/$version for $release as ${module#"$tmp/modules/"}: version $got_marker, vermagic $got_magic"
