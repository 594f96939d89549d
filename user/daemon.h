/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `kha-xdp run`: the daemon. One single-threaded epoll loop (user/loop.h)
 * that owns the data plane (user/maps.h), the health probes (user/probe.h),
 * VRRP or the plain VIP addresses, the local paths (user/local.h), the
 * control socket (user/ctl.h) and systemd's notification socket.
 *
 * Exit semantics (docs/operations.md, "Stop and restart"):
 *   - full stop: VRRP priority 0, VIP addresses removed, tc/cgroup
 *     programs detached, XDP link and every pin removed;
 *   - keep: exit leaving the data plane forwarding and the VIP where it is,
 *     for the next daemon to adopt (systemd restart, binary upgrade).
 * Which one a SIGTERM means is decided by kha_daemon_exit_mode().
 */
#ifndef KHA_DAEMON_H
#define KHA_DAEMON_H

#include <stdbool.h>

#include "config.h"
#include "maps.h"

enum kha_exit_mode {
	KHA_EXIT_AUTO = 0, /* ask systemd (restart job: keep; else: stop) */
	KHA_EXIT_STOP,     /* always tear everything down */
	KHA_EXIT_KEEP,     /* always leave the data plane */
};

struct kha_daemon_opts {
	const char *conf;      /* config file */
	const char *pin_root;  /* overrides the config's pin_root; NULL: no */
	const char *ctl_path;  /* overrides the config's ctl_socket; NULL: no */
	enum kha_exit_mode exit_mode;
};

/* Runs until SIGTERM/SIGINT; returns the process exit code. */
int kha_daemon_run(const struct kha_daemon_opts *o);

/*
 * The desired data plane state of `cfg`: every backend with its configured
 * weight, healthy, KHA_BE_F_LOCAL when its address is on this node. vips
 * has room for KHA_MAX_VIPS. Returns the number of VIPs.
 */
int kha_dp_vips_from_config(const struct kha_config *cfg,
			    struct kha_dp_vip *vips);

/* The node address for lb_config: cfg->local_addr, else the interface's. */
struct kha_addr kha_node_addr(const struct kha_config *cfg);

#endif /* KHA_DAEMON_H */
