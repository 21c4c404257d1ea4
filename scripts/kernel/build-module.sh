#!/usr/bin/env bash
# Build the fixed rxrpc.ko (kernel/patches) for the kernel the test VM boots.
#
# Usage: scripts/kernel/build-module.sh SUITE   (bookworm | bookworm-backports | trixie-backports)
#
# Prints the path of a directory holding rxrpc.ko and info (release, Debian
# version, series, marker, vermagic, how it was built). The kernel is the one
# scripts/vm/kernel.sh resolved for SUITE; linux-source, linux-headers (and
# -common) and linux-kbuild of exactly that package version are fetched with
# the same private apt configuration (the host's apt sources are never used or
# changed) and unpacked, never installed. kernel/build.sh then builds the
# module, on this host when the kernel's kbuild tools and compiler run here,
# otherwise in a Debian build root of the kernel's own release made with
# debootstrap (7.x: trixie, gcc-14; needs root). The result is checked against
# the stock module: same vermagic, same CRCs for every exported symbol (so the
# stock afs.ko loads on top of it).
#
# Everything is cached under ${RXRPC_VM_CACHE:-~/.cache/rxrpc-vm}: SUITE/fix/
# (sources and modules, per kernel version and patch set) and buildroot/
# (build roots). Progress goes to stderr; on failure the last line says why.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=scripts/vm/common.sh
. "$root/scripts/vm/common.sh"

log() { echo "build-module.sh: $*" >&2; }
die() { log "$*"; exit 1; }

suite=${1:-}
case $suite in
  bookworm | bookworm-backports | trixie-backports) ;;
  *) die "usage: build-module.sh bookworm|bookworm-backports|trixie-backports" ;;
esac
need kmod xz-utils patch make dwarves debian-archive-keyring

kernel=$("$root/scripts/vm/kernel.sh" "$suite") || die "cannot resolve the $suite kernel"
read -r release version <"$kernel/version"
series=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<<"$release")
compgen -G "$root/kernel/patches/$series/*.patch" >/dev/null ||
  die "no patches for Linux $series ($release, Debian $version) in kernel/patches; there are: $(cd "$root/kernel/patches" && echo *)"

base=${RXRPC_VM_CACHE:-$HOME/.cache/rxrpc-vm}
cache=$(cd "$base/$suite" && pwd)
# The module depends on the patches (and backports), the marker and both build scripts.
shopt -s nullglob
patches=("$root/kernel/backports/$series"/*.patch "$root/kernel/patches/$series"/*.patch)
shopt -u nullglob
key=$(cat "${patches[@]}" "$root/kernel/src"/* "$root/kernel/build.sh" "$here/build-module.sh" | sha256sum | cut -c1-8)
out=$cache/fix/rxrpc-${release}_${version}_$key
if [[ -s $out/rxrpc.ko ]]; then
  echo "$out"
  exit 0
fi

# kernel.sh's lock: the apt state is shared with it.
exec 9>"$cache/.lock"
flock -n 9 || { log "waiting for another build of the $suite kernel or module"; flock 9; }
debian_apt "$suite" "$cache/apt"
mkdir -p "$cache/fix"
src=$cache/fix/src-$version

# fetch: download and unpack the sources and headers of this kernel version
# into $src: headers/ (linux-headers-*, its -common and linux-kbuild, at their
# paths under usr/) and source/ (Debian's linux-source-X.Y tarball cut down to
# net/rxrpc, with the package's changelog, at their paths under usr/).
fetch() {
  local work deps pkgs full
  rm -rf "$cache"/fix/.fetch.*
  work=$(mktemp -d "$cache/fix/.fetch.XXXXXX")
  # shellcheck disable=SC2064 # expand now
  trap "rm -rf '$work'" EXIT
  deps=$(apt-cache "${apt_opts[@]}" show "linux-headers-$release=$version" 2>/dev/null | sed -n 's/^Depends: //p' | head -n1) ||
    true
  if [[ -z $deps ]]; then
    log "updating the package lists of $suite"
    apt-get "${apt_opts[@]}" -q update >&2 || die "cannot update the package lists of $suite"
    deps=$(apt-cache "${apt_opts[@]}" show "linux-headers-$release=$version" | sed -n 's/^Depends: //p' | head -n1) ||
      die "the archive has no linux-headers-$release at version $version"
  fi
  # "linux-headers-6.1.0-57-common (= 6.1.192-3), linux-kbuild-6.1 (>= 6.1.192-3), ..."
  pkgs=("linux-source-$series" "linux-headers-$release")
  mapfile -t -O 2 pkgs < <(tr ',' '\n' <<<"$deps" |
    sed -n 's/^ *\(linux-headers-[^ ]*-common\|linux-kbuild-[^ ]*\)\( .*\)\{0,1\}$/\1/p')
  ((${#pkgs[@]} == 4)) || die "cannot tell the -common and linux-kbuild packages of linux-headers-$release from: $deps"
  log "downloading ${pkgs[*]} ($version)"
  (cd "$work" && apt-get "${apt_opts[@]}" -q download "${pkgs[@]/%/=$version}" >&2) ||
    die "cannot download ${pkgs[*]} at version $version"
  mkdir -p "$work/headers" "$work/full" "$work/source/usr/src" "$work/cut"
  for deb in "$work"/linux-headers-*.deb "$work"/linux-kbuild-*.deb; do dpkg-deb -x "$deb" "$work/headers"; done
  dpkg-deb -x "$work"/linux-source-*.deb "$work/full"
  full=$work/full/usr/src/linux-source-$series.tar.xz
  [[ -f $full ]] || die "no usr/src/linux-source-$series.tar.xz in linux-source-$series"
  log "taking net/rxrpc out of linux-source-$series.tar.xz"
  tar -xf "$full" -C "$work/cut" "linux-source-$series/net/rxrpc" || die "no net/rxrpc in $full"
  tar -cJf "$work/source/usr/src/linux-source-$series.tar.xz" -C "$work/cut" "linux-source-$series"
  mkdir -p "$work/source/usr/share/doc"
  cp -r "$work/full/usr/share/doc/linux-source-$series" "$work/source/usr/share/doc/"
  rm -rf "$src"
  mkdir -p "$src"
  mv "$work/headers" "$work/source" "$src/"
  rm -rf "$work"
  trap - EXIT
}
[[ -d $src/headers && -d $src/source ]] || fetch
headers=$src/headers/usr/src/linux-headers-$release
tarball=$src/source/usr/src/linux-source-$series.tar.xz

# Can this host run the kernel's kbuild tools and its compiler? (Debian 12
# cannot for 7.x: its tools need glibc 2.38 and the kernel was built with gcc-14.)
compiler=$(sed -n 's/^CC = .*)\(gcc-[0-9]*\)$/\1/p' "$headers/.kernelvariables")
cross=$(sed -n 's/^override CROSS_COMPILE = \(.*\)$/\1/p' "$headers/.kernelvariables" | head -n1)
[[ $cross != *"\$("* ]] || cross= # only set when cross-compiling
[[ -n $compiler ]] || die "cannot tell the compiler of $release from $headers/.kernelvariables"
why=
if ! command -v "$cross$compiler" >/dev/null; then
  why="the kernel was built with $cross$compiler, which this host lacks"
fi
while read -r tool; do
  if ldd "$tool" 2>&1 | grep -q 'not found'; then
    why=${why:+$why; }"its kbuild tools do not run here ($(ldd "$tool" 2>&1 | grep -o "[^ \`']*GLIBC_[0-9.]*" | sort -uV | tail -n1) not found in this host's glibc)"
    break
  fi
done < <(find -L "$headers/scripts" "$headers/tools" -type f -perm -u+x -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; -print 2>/dev/null)

# buildroot DIST: a minimal Debian DIST with the kernel's compiler, made once.
buildroot() {
  local dist=$1 br=$base/buildroot/$1 tmp
  mkdir -p "$base/buildroot"
  exec 8>"$base/buildroot/.lock-$dist"
  flock -n 8 || { log "waiting for another build of the $dist build root"; flock 8; }
  if [[ ! -x $br/usr/bin/$cross$compiler ]]; then
    ((EUID == 0)) || die "building for $release needs a $dist build root ($why); debootstrap and chroot need root"
    need debootstrap
    rm -rf "$base/buildroot/.new-$dist"
    tmp=$base/buildroot/.new-$dist
    log "making a $dist build root with debootstrap (once; measured 40 s to 2 min, 490 MB)"
    debootstrap --variant=minbase --include="$compiler,make,libc6-dev,libelf1t64,dwarves,patch,xz-utils" \
      "$dist" "$tmp" http://deb.debian.org/debian >&2 ||
      die "debootstrap of $dist failed (log in $tmp/debootstrap/debootstrap.log)"
    rm -rf "$br"
    mv "$tmp" "$br"
  fi
  flock -u 8
  echo "$br"
}

build=$(mktemp -d "$cache/fix/.build.XXXXXX")
trap 'rm -rf "$build"' EXIT
if [[ -z $why ]]; then
  how="on this host with $compiler"
  # The headers name their -common tree by its installed path; point it at ours.
  sed -i "s|^include /usr/src/|include $src/headers/usr/src/|" "$headers/Makefile"
  nice "$root/kernel/build.sh" --headers "$headers" --source "$tarball" --out "$build" ||
    die "the build of rxrpc.ko for $release failed"
else
  dist=${suite%-backports}
  log "building in a $dist build root: $why"
  br=$(buildroot "$dist")
  how="in a Debian $dist build root with $cross$compiler ($why)"
  # The headers, kbuild and doc trees at their installed paths, this tree's
  # kernel/ and the output mounted into the build root, in a mount namespace
  # of its own (the mounts vanish with it).
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --pid --fork --mount-proc="$br/proc" bash -c '
    set -e
    br=$1 src=$2 kernel=$3 build=$4; shift 4
    for dir in "$src"/headers/usr/src/* "$src"/headers/usr/lib/linux-kbuild-* "$src"/headers/usr/share/doc/*; do
      [[ -d $dir && ! -L $dir ]] || continue
      mkdir -p "$br${dir#"$src/headers"}"
      mount --bind "$dir" "$br${dir#"$src/headers"}"
    done
    mkdir -p "$br/rxrpc/kernel" "$br/rxrpc/source" "$br/rxrpc/out"
    mount --bind "$kernel" "$br/rxrpc/kernel"
    mount --bind "$src/source" "$br/rxrpc/source"
    mount --bind "$build" "$br/rxrpc/out"
    exec chroot "$br" nice "$@"
  ' _ "$br" "$src" "$root/kernel" "$build" /rxrpc/kernel/build.sh --headers "/usr/src/linux-headers-$release" \
    --source "/rxrpc/source/usr/src/linux-source-$series.tar.xz" --out /rxrpc/out ||
    die "the build of rxrpc.ko for $release in the $dist build root failed"
fi

# The stock module, from the initramfs kernel.sh made, for the checks.
stock_path=$(cpio -it --quiet <"$kernel/initrd.img" | grep '/net/rxrpc/rxrpc\.ko$' | head -n1) ||
  die "no rxrpc.ko in $kernel/initrd.img"
(cd "$build" && cpio -id --quiet "$stock_path" <"$kernel/initrd.img" && mv "$stock_path" stock-rxrpc.ko)
built_magic=$(modinfo -F vermagic "$build/rxrpc.ko")
stock_magic=$(modinfo -F vermagic "$build/stock-rxrpc.ko")
[[ $built_magic == "$stock_magic" ]] ||
  die "vermagic of the built module ('$built_magic') differs from the stock module's ('$stock_magic')"
# Every exported symbol of the stock module, with the CRC the stock afs.ko
# expects. RxGK, where build.sh adds it, exports a few more (listed in info).
sort "$build/work/net/rxrpc/Module.symvers" | cut -f1,2 >"$build/built.symvers"
awk -F'\t' '$3 == "net/rxrpc/rxrpc"' "$headers/Module.symvers" | sort | cut -f1,2 >"$build/stock.symvers"
missing=$(comm -23 "$build/stock.symvers" "$build/built.symvers")
[[ -z $missing ]] ||
  die "the built module lacks these exports of the stock module (or their CRCs differ): $(echo $missing)"
added=$(comm -13 "$build/stock.symvers" "$build/built.symvers" | cut -f2 | tr '\n' ' ')
rxgk=no
grep -q $'^0x[0-9a-f]*\trxgk_kernel_query_challenge$' "$build/built.symvers" && rxgk=yes
marker=$(modinfo -F version "$build/rxrpc.ko")
[[ -n $marker ]] || die "the built module has no version marker"
{
  echo "release=$release"
  echo "debian_version=$version"
  echo "series=$series"
  echo "marker=$marker"
  echo "vermagic=$built_magic"
  echo "rxgk=$rxgk"
  echo "exports_added=${added% }"
  echo "depends=$(modinfo -F depends "$build/rxrpc.ko")"
  echo "patches=${patches[*]#"$root/kernel/"}"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) $how"
} >"$build/info"
mkdir -p "$build/result"
mv "$build/rxrpc.ko" "$build/info" "$build/result/"
mv -T "$build/result" "$out" 2>/dev/null || [[ -s $out/rxrpc.ko ]] || die "cannot store $out"
# Older builds for this suite (other kernels, other patch sets) go.
find "$cache/fix" -mindepth 1 -maxdepth 1 -name 'rxrpc-*' ! -path "$out" -exec rm -rf {} +
find "$cache/fix" -mindepth 1 -maxdepth 1 -name 'src-*' ! -path "$src" -exec rm -rf {} +
log "rxrpc.ko $marker for $release ($version) ready in $out"
echo "$out"
