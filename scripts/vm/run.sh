#!/usr/bin/env bash
# Run a command inside a Debian kernel that has AF_RXRPC, booted under QEMU
# (software emulation) with the host's root filesystem shared read-only.
#
# Usage: scripts/vm/run.sh [--kernel SUITE] [--timeout SECONDS] [--mem MB]
#                          [--smp N] [--out DIR] -- COMMAND [ARGS...]
#
#   --kernel   bookworm (default), bookworm-backports or trixie-backports;
#              with "+fix" (bookworm+fix, ...) the kernel's rxrpc module is
#              replaced at boot by one built with the patches in kernel/
#              (scripts/kernel/build-module.sh, built on first use, cached)
#   --timeout  seconds before the VM is killed (default 1800)
#   --mem      guest memory in MB (default 2048)
#   --smp      virtual CPUs (default 1: under emulation a second one made
#              node and jest slower, not faster)
#   --out      a host directory the command may write to, mounted writable at
#              the same path in the guest (default: a fresh temporary one,
#              removed afterwards if left empty); also in $RXRPC_VM_OUT
#   --nic      a virtio-net NIC on this QEMU network backend, the value of a
#              -netdev option without its id (e.g. dgram,local.type=inet,...);
#              the guest sees eth0, down and without an address
#   --mac      the NIC's MAC address (default 52:54:00:12:34:56)
#
# RXRPC_VM_QEMU_ARGS: extra QEMU arguments, split on spaces (the benchmark
# passes "-icount shift=N,sleep=off" for a clock that counts instructions).
#
# COMMAND runs as root in the caller's working directory with the caller's
# PATH, HOME=/tmp/home, TMPDIR=/tmp, RXRPC_VM_KERNEL=<guest uname -r>,
# RXRPC_VM_MODULE=stock|fixed (which rxrpc.ko was loaded), RXRPC_VM_RXGK=yes|no
# (whether it has RxGK), RXRPC_VM_MODULES
# (a root for "modprobe -d" holding the guest kernel's modules), and CI,
# RXRPC_*, JEST_* and NODE_* passed through; the host is read-only except for
# --out, /tmp is a fresh tmpfs. Its stdin is empty; its stdout and stderr
# stream to our stdout. A line "vm: kernel <release> (Debian <version>)" goes
# to stderr before it starts.
# Exit status: the command's, or 125 with a "vm: ..." line on stderr when the
# VM could not run it (kernel, boot, guest setup, timeout).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

die() {
  echo "vm: $*" >&2
  exit 125
}
usage() { die "usage: run.sh [--kernel SUITE] [--timeout S] [--mem MB] [--smp N] [--out DIR] [--nic NETDEV [--mac MAC]] -- COMMAND [ARGS...]"; }

suite=bookworm timeout=1800 mem=2048 smp=1 out=
nic= mac=52:54:00:12:34:56
while (($#)); do
  case $1 in
    --kernel) suite=${2:-} ;;
    --timeout) timeout=${2:-} ;;
    --mem) mem=${2:-} ;;
    --smp) smp=${2:-} ;;
    --out) out=${2:-} ;;
    --nic) nic=${2:-} ;;
    --mac) mac=${2:-} ;;
    --) shift; break ;;
    *) usage ;;
  esac
  (($# >= 2)) || usage
  shift 2
done
(($#)) || usage
for n in "$timeout" "$mem" "$smp"; do [[ $n =~ ^[1-9][0-9]*$ ]] || usage; done

module=stock
if [[ $suite == *+fix ]]; then
  suite=${suite%+fix} module=fixed
fi
need qemu-system-x86
kernel=$("$here/kernel.sh" "$suite") || die "cannot prepare the $suite kernel"
if [[ $module == fixed ]]; then
  fixed=$("$here/../kernel/build-module.sh" "$suite") ||
    die "cannot build the fixed rxrpc module for $suite (see build-module.sh above)"
fi
image=$kernel/vmlinuz
[[ -f $kernel/vmlinux ]] && image=$kernel/vmlinux

keep_out=1
if [[ -z $out ]]; then
  out=$(mktemp -d) keep_out=
fi
mkdir -p "$out" || die "cannot create $out"
out=$(cd "$out" && pwd -P)
ctl=$(mktemp -d)
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  rm -rf "$ctl"
  [[ -n $keep_out ]] || rmdir "$out" 2>/dev/null || echo "vm: output left in $out" >&2
}
trap cleanup EXIT

# Shell-quote for the guest's /bin/sh.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
cwd=$(pwd -P)
printf 'VM_OUT=%s\nVM_CWD=%s\n' "$(q "$out")" "$(q "$cwd")" >"$ctl/vm.env"
# init.sh loads this one in place of the kernel's rxrpc.ko, after the modules
# it needs (krb5 where it has RxGK).
rxgk=no
if [[ $module == fixed ]]; then
  cp "$fixed/rxrpc.ko" "$ctl/rxrpc.ko"
  modinfo -F depends "$fixed/rxrpc.ko" | tr ',' '\n' >"$ctl/rxrpc.deps"
  rxgk=$(sed -n 's/^rxgk=//p' "$fixed/info")
fi
{
  echo 'exec 3<&-'
  for name in $(compgen -e); do
    case $name in
      CI | RXRPC_* | JEST_* | NODE_*) printf 'export %s=%s\n' "$name" "$(q "${!name}")" ;;
    esac
  done
  printf 'export PATH=%s RXRPC_VM_OUT=%s RXRPC_VM_MODULE=%s RXRPC_VM_RXGK=%s RXRPC_VM_MODULES=/tmp/.vm\n' \
    "$(q "$PATH")" "$(q "$out")" "$module" "${rxgk:-no}"
  cat <<'EOF'
export HOME=/tmp/home TMPDIR=/tmp RXRPC_VM_KERNEL="$(uname -r)"
mkdir -p "$HOME"
EOF
  printf 'cd %s || exit 125\n' "$(q "$cwd")"
  printf 'exec'
  for arg in "$@"; do printf ' %s' "$(q "$arg")"; done
  echo
} >"$ctl/cmd.sh"

# Commas in QEMU option values are written twice.
share() { echo "local,path=${2//,/,,},mount_tag=$1,security_model=none,multidevs=remap${3:-}"; }
qemu=(
  qemu-system-x86_64 -accel tcg -cpu max -smp "$smp" -m "$mem"
  -nodefaults -nographic -no-reboot
  -kernel "$image" -initrd "$kernel/initrd.img"
  -append "console=ttyS0 quiet panic=-1"
  -serial "file:${ctl//,/,,}/console.log"
  -virtfs "$(share hostroot / ,readonly=on)"
  -virtfs "$(share out "$out")"
  -virtfs "$(share ctl "$ctl")"
  # hvc0 carries the command's output to our stdout, hvc1 notes to stderr.
  -device virtio-serial
  -chardev "stdio,id=hvc0,signal=off" -device "virtconsole,chardev=hvc0"
  -chardev "file,id=hvc1,path=${ctl//,/,,}/notes" -device "virtconsole,chardev=hvc1"
)
[[ -z $nic ]] || qemu+=(-netdev "$nic,id=net0" -device "virtio-net-pci,netdev=net0,mac=$mac")
# shellcheck disable=SC2206 # split on spaces, as documented
[[ -z ${RXRPC_VM_QEMU_ARGS:-} ]] || qemu+=(${RXRPC_VM_QEMU_ARGS})
# hvc1 reaches our stderr through a FIFO and cat, which write through our own
# stderr (reopening it would clobber a log file that stdout shares). Holding
# the FIFO open here lets cat start at once and end only after QEMU.
mkfifo "$ctl/notes"
cat "$ctl/notes" >&2 &
exec 7<>"$ctl/notes"
start=$SECONDS
timeout -s KILL "$timeout" "${qemu[@]}" </dev/null &
pid=$!
interrupted=
trap 'interrupted=1; kill "$pid" 2>/dev/null' INT TERM
status=0
wait "$pid" 2>/dev/null || status=$?
# A signal interrupts the first wait; wait again for QEMU to go.
while kill -0 "$pid" 2>/dev/null; do wait "$pid" 2>/dev/null || status=$?; done
exec 7>&-
wait

if [[ -s $ctl/status ]]; then
  read -r _ code <"$ctl/status"
  exit "$code"
fi
[[ -z $interrupted ]] || die "interrupted"
((SECONDS - start < timeout)) || die "timed out after $timeout s"
# Otherwise the console log tells why: init's "vm: ..." line or a kernel panic.
log=$(mktemp --tmpdir rxrpc-vm-console.XXXXXX)
tr -d '\r' 2>/dev/null <"$ctl/console.log" >"$log" || true
reason=$(sed -n 's/^vm: //p; s/.*\] \(Kernel panic.*\)/\1/p' "$log" | tail -n1)
((status == 0)) || reason=${reason:-QEMU failed with status $status}
die "${reason:-the guest stopped before the command finished} (console log: $log)"
