// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Compiled into rxrpc.ko by kernel/build.sh, beside the patches (not part of
 * them): it gives the fixed module a version, so /sys/module/rxrpc/version
 * exists and reads "upgrade-fix.N". Debian's own rxrpc.ko has no version, so
 * the file is absent there. N counts changes to the patch set.
 */
#include <linux/module.h>

MODULE_VERSION("upgrade-fix.6");
