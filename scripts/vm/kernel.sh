#!/usr/bin/env bash
# Fetch a Debian kernel and build the initramfs that boots the test VM.
#
# Usage: scripts/vm/kernel.sh SUITE   (bookworm | bookworm-backports | trixie-backports)
#
# Prints the path of a directory holding vmlinuz, initrd.img and version
# ("<kernel release> <Debian package version>"), and vmlinux, the same kernel
# uncompressed, when it can be booted directly (PVH): under emulation that
# saves the seconds vmlinuz spends decompressing itself. Everything is cached under
# ${RXRPC_VM_CACHE:-~/.cache/rxrpc-vm}/SUITE: the archive is asked for the
# current kernel at most once a day (always with RXRPC_VM_REFRESH=1) and an
# initramfs is built once per kernel package version. Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

log() { echo "kernel.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Modules the guest needs, in load order: virtio transport, its consoles, the
# 9p shares, the ciphers rxkad needs (rxrpc fails to load without fcrypt and
# pcbc; rxrpc_s server keys need pcbc(des): without des_generic add_key fails
# with ENOENT on 6.1 and 6.12) and AF_RXRPC. Newer kernels have some built in.
modules=(virtio_pci virtio_console 9pnet_virtio 9p fcrypt pcbc des_generic rxrpc)
# Modules put in the initramfs but not loaded: the kernel's AFS client (kafs.ko), which
# a test loads (init.sh makes the initramfs's modules reachable from the
# command as $RXRPC_VM_MODULES, a root for modprobe -d), and the Kerberos 5
# crypto of RxGK (7.x): krb5.ko, which a fixed rxrpc.ko built with RxGK needs
# first (init.sh loads it), and the templates and ciphers its enctypes ask for.
optional=(kafs krb5 krb5enc authenc cts cmac camellia_generic)

suite=${1:-}
case $suite in
  bookworm | bookworm-backports | trixie-backports) ;;
  *) die "usage: kernel.sh bookworm|bookworm-backports|trixie-backports" ;;
esac

need busybox-static kmod cpio xz-utils zstd debian-archive-keyring
# For run.sh --nic and tests that shape traffic: the virtio NIC, veth pairs
# and netem.
modules+=(virtio_net veth sch_netem)

cache=${RXRPC_VM_CACHE:-$HOME/.cache/rxrpc-vm}/$suite
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# One kernel.sh per suite at a time: they share the apt state and the builds
# (scripts/kernel/build-module.sh takes the same lock).
exec 9>"$cache/.lock"
flock -n 9 || { log "waiting for another kernel.sh"; flock 9; }
debian_apt "$suite" "$cache/apt"

# resolve: ask the archive which kernel linux-image-amd64 means today and
# record "<version> <package>..." (the image and, on 7.x kernels, the
# linux-binary-* (vmlinuz), linux-modules-* and linux-base-* (modules.builtin)
# packages it is split into).
resolve() {
  resolved_now=1
  log "resolving linux-image-amd64 in $suite"
  apt-get "${apt_opts[@]}" -q update >&2 || return 1
  local deps image parts version
  deps=$(apt-cache "${apt_opts[@]}" depends --recurse --important linux-image-amd64 | sort -u)
  image=$(grep -E '^linux-image-[0-9]' <<<"$deps" | head -n1) || return 1
  parts=$(grep -E '^linux-(base|binary|modules)-[0-9]' <<<"$deps" | tr '\n' ' ') || true
  version=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$image" | sed -n 's/^Version: //p')
  echo "$version $image $parts" >"$cache/resolved.tmp" && mv "$cache/resolved.tmp" "$cache/resolved"
}

# extract_vmlinux BZIMAGE OUT: unpack the compressed kernel (xz on 6.1, zstd
# later) that a bzImage carries; its last 4 bytes are the unpacked size.
extract_vmlinux() {
  local setup offset length
  setup=$(od -An -tu1 -j $((0x1f1)) -N1 "$1")
  read -r offset length < <(od -An -tu4 -j $((0x248)) -N8 "$1")
  dd if="$1" of=payload iflag=skip_bytes,count_bytes bs=1M status=none \
    skip=$(((setup + 1) * 512 + offset)) count=$((length - 4))
  xz -dc payload >"$2" 2>/dev/null || zstd -qdc payload >"$2" 2>/dev/null
}

# built: the result directory for the resolved kernel, if it is already there.
# The initramfs depends on this script and init.sh too: rebuild when they change.
built() {
  local scripts
  read -r version pkgs <"$cache/resolved"
  read -ra pkgs <<<"$pkgs"
  scripts=$(cat "$here/kernel.sh" "$here/init.sh" | sha256sum | cut -c1-8)
  out=$cache/${pkgs[0]}_${version}_$scripts
  [[ -s $out/version ]]
}

resolved_now=
if [[ ${RXRPC_VM_REFRESH:-} == 1 || -z $(find "$cache/resolved" -mmin -1440 2>/dev/null) ]]; then
  resolve || { [[ -s $cache/resolved ]] && log "refresh failed; using the last resolved kernel"; } ||
    die "cannot resolve the kernel for $suite"
fi
# Before building, make sure the packages are still the current ones (the
# archive drops superseded kernels).
if ! built && [[ -z $resolved_now ]]; then
  resolve || die "cannot resolve the kernel for $suite"
fi
if built; then
  echo "$out"
  exit 0
fi

# Build in a scratch directory beside the result and rename it into place at
# the end, so an interrupted run never leaves a half-built kernel behind.
rm -rf "$cache"/.build.*
work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
log "downloading ${pkgs[*]} ($version)"
mkdir debs root initrd result
(cd debs && apt-get "${apt_opts[@]}" -q download "${pkgs[@]}" >&2)
for deb in debs/*.deb; do dpkg-deb -x "$deb" root; done
# 7.x kernels keep everything under usr/lib/modules; modprobe looks in lib.
[[ -e root/lib ]] || ln -s usr/lib root/lib
release=$(ls root/lib/modules)
[[ -d root/lib/modules/$release ]] || die "expected one kernel in ${pkgs[*]}, found: $release"
vmlinuz=root/boot/vmlinuz-$release
[[ -f $vmlinuz ]] || vmlinuz=root/lib/modules/$release/vmlinuz
cp "$vmlinuz" result/vmlinuz
config=root/boot/config-$release
[[ -f $config ]] || config=root/lib/modules/$release/config
if grep -qx CONFIG_PVH=y "$config" && ! extract_vmlinux "$vmlinuz" result/vmlinux; then
  log "cannot unpack $vmlinuz; booting it as it is"
  rm -f result/vmlinux
fi

log "building initramfs for $release"
depmod -b root "$release"
mods=initrd/lib/modules/$release
mkdir -p "$mods" initrd/bin initrd/etc initrd/proc initrd/sys initrd/dev initrd/newroot initrd/ctl
for mod in "${modules[@]}" "${optional[@]}"; do
  # Built-in modules need no loading, and one that modprobe cannot find is
  # skipped (7.x has no fcrypt or pcbc; its rxrpc pulls in libdes instead).
  # The guest checks that the 9p shares and AF_RXRPC really work.
  deps=$(modprobe -C /dev/null -d root -S "$release" --show-depends "$mod" 2>/dev/null) || continue
  while read -r cmd path _; do
    [[ $cmd == insmod ]] || continue
    rel=${path#*/lib/modules/"$release"/}
    mkdir -p "$mods/$(dirname "$rel")"
    case $path in
      *.xz) xz -dc "$path" >"$mods/${rel%.xz}" ;;
      *.zst) zstd -qdc "$path" >"$mods/${rel%.zst}" ;;
      *) cp "$path" "$mods/$rel" ;;
    esac
  done <<<"$deps"
  if grep -q '^insmod' <<<"$deps" && [[ " ${modules[*]} " == *" $mod "* ]]; then
    echo "$mod" >>initrd/etc/modules
  fi
done
touch initrd/etc/modules "$mods"/modules.{order,builtin,builtin.modinfo}
cp root/lib/modules/"$release"/modules.builtin* "$mods" 2>/dev/null || true
depmod -b initrd "$release"
cp /bin/busybox initrd/bin/busybox
ln -s busybox initrd/bin/sh
install -m 755 "$here/init.sh" initrd/init
(cd initrd && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >result/initrd.img
echo "$release $version" >result/version

mv -T result "$out" 2>/dev/null || [[ -s $out/version ]] || die "cannot store $out"
find "$cache" -mindepth 1 -maxdepth 1 -name 'linux-*' ! -path "$out" -exec rm -rf {} +
log "kernel $release ($version) ready in $out"
echo "$out"
