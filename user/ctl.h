/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's control socket and the status document.
 *
 * Protocol (docs/cli.md): a unix stream socket, root only (directory 0700,
 * socket 0600, and the peer's uid checked with SO_PEERCRED). The client
 * sends one request line and reads until the daemon closes:
 *
 *   request:  "status" | "status json" | "drain ADDR:PORT" | "enable ADDR:PORT"
 *   response: "OK\n" or "ERR\n", then the body (text or JSON)
 *
 * The status document is the same whether it comes from the daemon (with
 * health and VRRP) or from the pinned maps alone (`kha-xdp status` with no
 * daemon running).
 */
#ifndef KHA_CTL_H
#define KHA_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "health.h"
#include "loop.h"
#include "maps.h"

struct kha_vrrp_status;
struct kha_ctl;

/* Fill `out` with the answer; return 0 (OK) or -errno (ERR). */
typedef int (*kha_ctl_handler)(void *arg, const char *req, FILE *out);

/*
 * Listen on `path` (its directory is created 0700; a stale socket is
 * replaced, a live one refused with -EADDRINUSE). NULL with errno set.
 */
struct kha_ctl *kha_ctl_listen(struct kha_loop *l, const char *path,
			       kha_ctl_handler h, void *arg);
/* Stop listening and remove the socket. NULL is fine. */
void kha_ctl_close(struct kha_ctl *c);

/*
 * Client: send `req`, read the whole answer into *body (malloc'd, NUL
 * terminated). Returns 0 for OK, 1 for ERR, -errno when there is no daemon
 * (-ENOENT, -ECONNREFUSED) or I/O failed.
 */
int kha_ctl_request(const char *path, const char *req, char **body);

/* What the status document is made of; NULL/0 fields are left out. */
struct kha_status_ctx {
	struct kha_dp *dp;
	const char *source;     /* "daemon" or "maps" */
	int daemon_pid;
	const char *config_path;
	/* per backend id: health from the prober, drained by the operator */
	const struct kha_health *health[KHA_MAX_BACKENDS];
	bool drained[KHA_MAX_BACKENDS];
	const struct kha_vrrp_status *vrrp;
	int nr_vip_addrs;        /* VIPs added to the interface (no VRRP) */
	bool local_tc, local_cgroup;
};

/* Write the status as text or JSON (one object). Returns 0 or -errno. */
int kha_status_write(FILE *f, bool json, const struct kha_status_ctx *c);

#endif /* KHA_CTL_H */
