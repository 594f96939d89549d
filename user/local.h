/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Local backends and local clients (DESIGN.md packet paths 4 and 5):
 *
 *   tc egress   (bpf/tc_egress.bpf.c)   replies of the node's own backend,
 *               node:6443 -> client, get their source rewritten back to
 *               VIP:vip_port from the `snat` entry XDP inserted;
 *   cgroup v2   (bpf/cgroup_sock.bpf.c) connect4 sends connect(VIP:port)
 *               to the backend the node's address hashes to in the VIP's
 *               Maglev table; getpeername4 shows VIP:port back.
 *
 * Both programs reuse the data plane's pinned maps (vips, vip_state, rings,
 * backends, snat, lb_config ... under <pin_root>/<ifname>/), so the XDP
 * loader must have pinned them first. What this module adds under pin_dir:
 *
 *   prog_tc_egress       the tc program (identifies our filter on detach)
 *   tc_state             ARRAY[1] struct kha_tc_state: did we create clsact
 *   link_connect4        cgroup link
 *   link_getpeername4    cgroup link
 *   local_peer           SK_STORAGE: original VIP:port of redirected sockets
 *
 * Rules, docs/local.md: our tc filter is handle KHA_TC_HANDLE, priority
 * KHA_TC_PRIO on clsact egress; detach deletes that filter only if its
 * program is ours, and deletes the clsact qdisc only if we created it and
 * no filter at all (ours or anyone's, ingress or egress) remains on it.
 * The cgroup programs act only in the network namespace they were attached
 * from (netns cookie fixed at load time), because a cgroup hook sees every
 * process of the machine whatever its namespace.
 */
#ifndef KHA_LOCAL_H
#define KHA_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 'K' 'H': fixed, so a restarted daemon finds (and only finds) its filter */
#define KHA_TC_HANDLE 0x4b48
#define KHA_TC_PRIO 0x4b48

/* tc_state flags */
#define KHA_TC_F_CREATED_CLSACT (1u << 0) /* clsact did not exist before us */

/* Value of <pin_dir>/tc_state, key 0. */
struct kha_tc_state {
	uint32_t flags;
	uint32_t ifindex;
	uint32_t handle;
	uint32_t prio;
};

struct kha_local_opts {
	const char *ifname;      /* interface carrying the VIP (tc egress) */
	const char *pin_dir;     /* <pin_root>/<ifname>, data plane maps pinned */
	const char *cgroup_path; /* NULL or "" = cgroup2 root from /proc/mounts */
	bool tc;                 /* path 4: tc egress on ifname */
	bool cgroup;             /* path 5: connect4 + getpeername4 */
	/*
	 * false (default): the cgroup programs act only in the caller's
	 * network namespace. true: in every namespace of the cgroup, for
	 * pods on the node that use the VIP (docs/local.md, "Pods").
	 */
	bool all_netns;
};

/*
 * Attach what o->tc / o->cgroup ask for. Idempotent: an existing attachment
 * of ours is updated in place to the freshly loaded program (so a new
 * binary takes over) and keeps its private maps (sockets redirected by the
 * old program still show VIP:port). The netns the caller runs in is the one
 * the cgroup programs serve. Returns 0 or -errno (message logged).
 */
int kha_local_attach(const struct kha_local_opts *o);

/*
 * Remove what o->tc / o->cgroup select, only what we attached; missing
 * pieces are not an error (detach twice is fine). Returns 0 or the first
 * -errno (every step is still attempted).
 */
int kha_local_detach(const struct kha_local_opts *o);

/* 1 when our tc filter / both cgroup links are in place, 0 if not. */
int kha_local_tc_attached(const struct kha_local_opts *o);
int kha_local_cgroup_attached(const struct kha_local_opts *o);

/* The cgroup v2 mount point from /proc/mounts into buf; 0 or -ENOENT. */
int kha_local_cgroup2_root(char *buf, size_t len);

/* Cookie of the calling thread's network namespace; 0 or -errno. */
int kha_local_netns_cookie(uint64_t *cookie);

#endif /* KHA_LOCAL_H */
