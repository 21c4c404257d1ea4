#!/usr/bin/env bash
# Debian packages the integration tests use inside the VM, where they run
# from the host's filesystem: tshark (packet checks), OpenAFS's vlserver
# and udebug (a real peer), and gcc with the kernel's uapi headers
# (linux-libc-dev: <linux/rxrpc.h>) for the kernel fix's reproducer
# (kernel/selftest). Installed as root when missing; otherwise named.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=vm/common.sh
. "$here/vm/common.sh"
export DEBIAN_FRONTEND=noninteractive
need tshark openafs-dbserver openafs-client gcc linux-libc-dev
