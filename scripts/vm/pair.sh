#!/usr/bin/env bash
# Boot two kernel VMs (scripts/vm/run.sh) joined by one virtual Ethernet link
# and run a command in each, at the same time.
#
# Usage: scripts/vm/pair.sh [--kernel-a SUITE] [--kernel-b SUITE] [--timeout S]
#                           [--grace S] [--mem MB] [--out DIR]
#                           -- COMMAND_A [ARGS...] ::: COMMAND_B [ARGS...]
#
#   --kernel-a, --kernel-b  the two kernels (run.sh --kernel; default bookworm)
#   --timeout  seconds before either VM is killed (default 1800)
#   --grace    seconds the other VM may go on once one command has ended
#              (default 60); then it is stopped and counts as failed (125)
#   --mem      guest memory in MB, each (default 1024)
#   --out      host directory: DIR/a and DIR/b are the two VMs' run.sh --out
#              directories (default: temporary ones, removed if left empty)
#
# The link: each VM has a virtio NIC on QEMU's dgram backend, which sends the
# Ethernet frames as UDP datagrams to the other VM's port on 127.0.0.1; the
# host sees nothing but loopback traffic, and the guests nothing but each
# other. In the guests the NIC is eth0 with a link-local address: A is
# 169.254.0.1/16, B 169.254.0.2/16.
#
# Each command runs as with run.sh, with these variables besides:
#   RXRPC_PAIR_ROLE        a or b
#   RXRPC_PAIR_SELF        this guest's address; RXRPC_PAIR_PEER the other's
#   RXRPC_PAIR_IF          the link's interface (eth0)
#   RXRPC_PAIR_KERNEL_A/B  the two kernels' suite names
# Output: both VMs' lines, prefixed "a| " and "b| ". Exit status: 0 when both
# commands exited 0; otherwise A's status when it is not 0, else B's. A line
# "pair: a exit N, b exit M" goes to stderr at the end. Like run.sh, this
# boots VMs: run it under flock /tmp/rxrpc-vm.lock (both VMs as one unit).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

die() {
  echo "pair: $*" >&2
  exit 125
}
usage() { die "usage: pair.sh [--kernel-a SUITE] [--kernel-b SUITE] [--timeout S] [--grace S] [--mem MB] [--out DIR] -- COMMAND_A... ::: COMMAND_B..."; }

kernel_a=bookworm kernel_b=bookworm timeout=1800 grace=60 mem=1024 out=
while (($#)); do
  case $1 in
    --kernel-a) kernel_a=${2:-} ;;
    --kernel-b) kernel_b=${2:-} ;;
    --timeout) timeout=${2:-} ;;
    --grace) grace=${2:-} ;;
    --mem) mem=${2:-} ;;
    --out) out=${2:-} ;;
    --) shift; break ;;
    *) usage ;;
  esac
  (($# >= 2)) || usage
  shift 2
done
cmd_a=() cmd_b=()
while (($#)) && [[ $1 != ::: ]]; do cmd_a+=("$1"); shift; done
(($#)) && shift
cmd_b=("$@")
((${#cmd_a[@]} && ${#cmd_b[@]})) || usage
for n in "$timeout" "$grace" "$mem"; do [[ $n =~ ^[1-9][0-9]*$ ]] || usage; done

need iproute2
ip=$(command -v ip) || die "no ip command (iproute2)"
# Prepare both kernels first (cached after the first time), so that the two
# VMs boot together.
for suite in "$kernel_a" "$kernel_b"; do
  "$here/kernel.sh" "${suite%+*}" >/dev/null || die "cannot prepare the $suite kernel"
done

# Two free UDP ports on the host's loopback for the link's ends.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 20000))
    [[ " ${taken:-} " == *" $port "* ]] && continue
    ss -Hlun "sport = :$port" 2>/dev/null | grep -q . && continue
    taken="${taken:-} $port"
    echo "$port"
    return 0
  done
  return 1
}
port_a=$(free_port) && taken=$port_a && port_b=$(free_port) || die "no free UDP port on 127.0.0.1"
dgram() { echo "dgram,local.type=inet,local.host=127.0.0.1,local.port=$1,remote.type=inet,remote.host=127.0.0.1,remote.port=$2"; }

keep_out=1
if [[ -z $out ]]; then
  out=$(mktemp -d) keep_out=
fi
mkdir -p "$out/a" "$out/b" || die "cannot create $out"

# The guest brings the link up before the command starts.
setup='"$0" link set dev "$RXRPC_PAIR_IF" up && "$0" addr add "$RXRPC_PAIR_SELF/16" dev "$RXRPC_PAIR_IF" || exit 125; exec "$@"'
start() { # ROLE SUITE SELF PEER MAC LOCAL_PORT REMOTE_PORT COMMAND...
  local role=$1 suite=$2 self=$3 peer=$4 mac=$5 local_port=$6 remote_port=$7
  shift 7
  RXRPC_PAIR_ROLE=$role RXRPC_PAIR_SELF=$self RXRPC_PAIR_PEER=$peer RXRPC_PAIR_IF=eth0 \
    RXRPC_PAIR_KERNEL_A=$kernel_a RXRPC_PAIR_KERNEL_B=$kernel_b \
    exec "$here/run.sh" --kernel "$suite" --timeout "$timeout" --mem "$mem" --out "$out/$role" \
    --nic "$(dgram "$local_port" "$remote_port")" --mac "$mac" \
    -- sh -c "$setup" "$ip" "$@" </dev/null > >(sed -u "s/^/$role| /") 2>&1
}
start a "$kernel_a" 169.254.0.1 169.254.0.2 52:54:00:a9:fe:01 "$port_a" "$port_b" "${cmd_a[@]}" &
pid_a=$!
start b "$kernel_b" 169.254.0.2 169.254.0.1 52:54:00:a9:fe:02 "$port_b" "$port_a" "${cmd_b[@]}" &
pid_b=$!
trap 'kill "$pid_a" "$pid_b" 2>/dev/null' INT TERM

status_a= status_b=
while [[ -z $status_a && -z $status_b ]]; do
  s=0 done=
  wait -n -p done "$pid_a" "$pid_b" 2>/dev/null || s=$?
  if [[ $done == "$pid_a" ]]; then status_a=$s; elif [[ $done == "$pid_b" ]]; then status_b=$s; fi
done
# The other one has --grace seconds to finish.
other=$pid_a
[[ -n $status_a ]] && other=$pid_b
for ((i = 0; i < grace * 10; i++)); do
  kill -0 "$other" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$other" 2>/dev/null; then
  echo "pair: stopping the other VM: still running $grace s after one ended" >&2
  kill "$other" 2>/dev/null || true
  wait "$other" 2>/dev/null || true
  s=125
else
  s=0
  wait "$other" 2>/dev/null || s=$?
fi
if [[ -z $status_a ]]; then status_a=$s; else status_b=$s; fi
wait 2>/dev/null || true # the output filters
[[ -n $keep_out ]] || rmdir "$out/a" "$out/b" "$out" 2>/dev/null || true
echo "pair: a exit $status_a, b exit $status_b" >&2
((status_a != 0)) && exit "$status_a"
exit "$status_b"
