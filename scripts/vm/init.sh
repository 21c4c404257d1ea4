#!/bin/sh
# First process of the test VM (busybox sh, from the initramfs built by
# kernel.sh). Loads the modules (and replaces rxrpc with the fixed module
# when run.sh left one in the ctl share), mounts the host's root filesystem
# read-only from 9p, chroots into it and runs the command that run.sh left in
# the ctl share. Console (ttyS0): kernel log and our failures. hvc0: the command's
# output. hvc1: our notes for run.sh's stderr. /ctl/status: "exit N".
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
  printf '\nvm: %s\n' "$*"
  poweroff -f
}
must() { "$@" || fail "failed: $*"; }
mount9p() { must mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,$3" "$1" "$2"; }

must mount -t proc proc /proc
must mount -t sysfs sysfs /sys
must mount -t devtmpfs devtmpfs /dev
# The kernel's module requests (also from the chroot) use our modprobe.
echo /bin/modprobe >/proc/sys/kernel/modprobe
while read -r mod; do
  must modprobe "$mod"
done </etc/modules

mount9p ctl /ctl cache=none
[ -f /ctl/vm.env ] || fail "no /ctl/vm.env"
# The fixed rxrpc.ko replaces the stock one before any AF_RXRPC socket exists
# (rmmod fails once one has been used). It is unsigned: it taints the kernel.
rxrpc_note=
if [ -f /ctl/rxrpc.ko ]; then
  rmmod rxrpc || fail "cannot unload the stock rxrpc module"
  if [ -f /ctl/rxrpc.deps ]; then
    while read -r mod; do
      [ -z "$mod" ] || must modprobe "$mod"
    done </ctl/rxrpc.deps
  fi
  insmod /ctl/rxrpc.ko || fail "cannot load the fixed rxrpc.ko (see the kernel log above)"
  [ -f /sys/module/rxrpc/version ] || fail "the loaded rxrpc.ko has no version: not the fixed module"
  rxrpc_note=", rxrpc $(cat /sys/module/rxrpc/version) (fixed module; taint $(cat /proc/sys/kernel/tainted))"
fi
grep -qi rxrpc /proc/net/protocols || [ -d /proc/net/rxrpc ] || fail "no AF_RXRPC in this kernel"
# shellcheck source=/dev/null
. /ctl/vm.env
new=/newroot
mount9p hostroot $new ro,cache=loose
must mount -t proc proc $new/proc
must mount -t sysfs sysfs $new/sys
must mount -t devtmpfs devtmpfs $new/dev
must mkdir -p $new/dev/pts $new/dev/shm
must mount -t devpts devpts $new/dev/pts
must mount -t tmpfs shm $new/dev/shm
if [ -d $new/sys/kernel/tracing ]; then
  must mount -t tracefs tracefs $new/sys/kernel/tracing
fi
# The guest's /tmp is a fresh tmpfs; a working directory below the host's /tmp
# is brought in (read-only) through a bind of its top-level entry.
must mkdir /hosttmp
must mount --bind $new/tmp /hosttmp
must mount -t tmpfs -o mode=1777 tmp $new/tmp
# The initramfs's modules (the guest kernel's, not the host's) for the
# command: modprobe -d /tmp/.vm MODULE (run.sh exports RXRPC_VM_MODULES).
must mkdir -p $new/tmp/.vm/lib/modules
must mount --bind /lib/modules $new/tmp/.vm/lib/modules
case $VM_CWD in
  /tmp/?*)
    top=${VM_CWD#/tmp/}
    top=/tmp/${top%%/*}
    must mkdir -p "$new$top"
    must mount --bind "/hosttmp${top#/tmp}" "$new$top"
    ;;
esac
must mkdir -p "$new$VM_OUT"
mount9p out "$new$VM_OUT" cache=none
must ip link set lo up
[ -d "$new$VM_CWD" ] || fail "no directory $VM_CWD in the guest"

# The console ports appear asynchronously after the driver has loaded. Their
# settings last only while the device is open: hold both open.
tries=0
until [ -e /dev/hvc0 ] && [ -e /dev/hvc1 ]; do
  [ $((tries += 1)) -le 300 ] || fail "no virtio console"
  sleep 0.1
done
exec 4>/dev/hvc0 5>/dev/hvc1 || fail "cannot open the virtio console"
must stty -F /dev/hvc0 raw -echo
must stty -F /dev/hvc1 raw -echo
version=$(uname -v | sed -n 's/.*Debian \([^ ]*\).*/Debian \1/p')
echo "vm: kernel $(uname -r) (${version:-$(uname -v)})$rxrpc_note" >&5

# The command sees a pipe rather than the console as stdout and stderr.
{
  env -i chroot $new /bin/sh -c '. /proc/self/fd/3' 3</ctl/cmd.sh </dev/null 2>&1 4>&- 5>&-
  echo "exit $?" >/ctl/status
} | cat >&4
exec 4>&- 5>&-  # the last close waits until the output is sent
sync
poweroff -f
