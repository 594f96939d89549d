/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The data plane object: the XDP program, its pinned maps and its pinned
 * link under <pin_root>/<ifname>/, loaded fresh or adopted from a previous
 * process, and the operations that keep its maps true (VIPs, backends with
 * stable ids, Maglev tables published atomically, counters).
 *
 * Pin layout (docs/operations.md):
 *   <pin_root>/<ifname>/<map>       every map of headers/kha_abi.h, by name
 *   <pin_root>/<ifname>/link_xdp    the bpf_link holding the XDP program
 * The link, not the process, keeps the program attached: a daemon that
 * exits or crashes without kha_dp_detach() leaves forwarding running.
 */
#ifndef KHA_MAPS_H
#define KHA_MAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <limits.h>
#include <net/if.h>

#include "../headers/kha_abi.h"

enum kha_map_id {
	KHA_MAP_VIPS = 0,
	KHA_MAP_VIP_STATE,
	KHA_MAP_RINGS,
	KHA_MAP_BACKENDS,
	KHA_MAP_CONNTRACK,
	KHA_MAP_SNAT,
	KHA_MAP_VIP_STATS,
	KHA_MAP_BACKEND_STATS,
	KHA_MAP_REASONS,
	KHA_MAP_LB_CONFIG,
	KHA_MAP_SNAT_TW,   /* TIME_WAIT evidence by snat slot */
	KHA_MAP_SNAT_CURSOR, /* per CPU and backend: the next SNAT port */
	KHA_MAP_CT_SYN,    /* flows in their handshake (headers/kha_abi.h) */
	KHA_MAP__MAX,
};

/* Map name as in bpf/maps.h (and as pinned), by enum kha_map_id. */
const char *kha_map_name(enum kha_map_id m);

#define KHA_LINK_XDP_PIN "link_xdp"
#define KHA_DP_ROOT_MAX 256

struct kha_dp_opts {
	const char *ifname;
	const char *pin_root;  /* NULL = KHA_PIN_ROOT_DEFAULT */
	uint32_t ring_size;    /* 0 = KHA_RING_SIZE_DEFAULT; prime */
	bool xdp_generic;      /* XDP_FLAGS_SKB_MODE instead of native */
};

/*
 * One backend of the desired state. The caller fills everything but `id`;
 * kha_dp_sync() assigns `id` (stable: same VIP + address + port keeps its
 * id across syncs, reloads and daemon restarts).
 */
struct kha_dp_backend {
	struct kha_addr addr;
	uint16_t port;   /* host order */
	uint32_t weight; /* 0 = drained: no new flows, established ones stay */
	bool healthy;
	bool local;      /* address of this node: DNAT only (KHA_BE_F_LOCAL) */
	uint32_t id;     /* out */
};

struct kha_dp_vip {
	struct kha_addr addr;
	uint16_t port;  /* host order */
	int nr_backends;
	struct kha_dp_backend backends[KHA_MAX_BACKENDS];
	uint32_t id;    /* out */
	int nr_in_ring; /* out: backends with slots in the published table */
};

/* Publication timing, for the daemon's debug log and the 10 ms budget. */
struct kha_dp_pubstat {
	uint64_t build_ns;   /* maglev_build into the inactive generation */
	uint64_t flip_ns;    /* vip_state update */
};

struct kha_dp {
	char ifname[IF_NAMESIZE];
	int ifindex;
	char pin_root[KHA_DP_ROOT_MAX];
	char dir[KHA_DP_ROOT_MAX + IF_NAMESIZE + 2]; /* <pin_root>/<ifname> */
	uint32_t ring_size;
	bool adopted;        /* found pinned; not loaded by this process */
	bool xdp_generic;
	int fds[KHA_MAP__MAX];
	int link_fd;         /* -1 when not attached */
	uint32_t prog_id;    /* the attached XDP program */
	uint16_t *rings;     /* mmap of the rings map: flat __u16 slots */
	size_t rings_len;
	uint32_t *scratch;   /* one ring, for building */
	uint32_t next_be_id; /* round robin: freed ids are reused last */
	/* what we last wrote to `backends`: a publish skips unchanged ones */
	struct kha_backend be_written[KHA_MAX_BACKENDS];
	bool be_written_ok[KHA_MAX_BACKENDS];
};

/*
 * Load the XDP program, pin its maps and attach it through a pinned link.
 * Refuses (-EEXIST) when <dir>/link_xdp already exists (an attached kha-xdp
 * data plane: adopt or detach it), and (-EBUSY) when another XDP program is
 * attached to the interface. -ENODEV: no such interface. The maps start
 * empty; lb_config gets the ring size and default SNAT range. On error
 * everything this call created is removed again; `err` gets one line.
 */
int kha_dp_load(struct kha_dp *dp, const struct kha_dp_opts *o, char *err,
		size_t errlen);

/*
 * Open the pinned set under <pin_root>/<ifname>/ without changing any
 * state (no map is written, no flow reset). -ENOENT when nothing is pinned
 * there; -ENOLINK when the maps are pinned but the link is missing or no
 * longer attached to this interface (the maps are then open and the caller
 * may kha_dp_reattach()).
 */
int kha_dp_adopt(struct kha_dp *dp, const char *ifname, const char *pin_root,
		 char *err, size_t errlen);

/*
 * Adopt if pinned (and still attached), else load and attach. Sets
 * dp->adopted accordingly.
 */
int kha_dp_open(struct kha_dp *dp, const struct kha_dp_opts *o, char *err,
		size_t errlen);

/*
 * Load a fresh program reusing the already open (adopted) maps and attach
 * it through a new pinned link: the case where the pins survived but the
 * link is gone (interface re-created, link detached by someone).
 */
int kha_dp_reattach(struct kha_dp *dp, bool xdp_generic, char *err,
		    size_t errlen);

/*
 * After adoption: load this binary's XDP program on the adopted maps and,
 * if its code differs from the running one (program tag), swap it into the
 * pinned link with one bpf_link_update(): an upgrade without a packet
 * lost, maps and flows untouched. Same code: nothing changes. Called by
 * kha_dp_open(); a failure leaves the running program (0 or -errno).
 */
int kha_dp_upgrade_prog(struct kha_dp *dp, char *err, size_t errlen);

/* true when our link still holds a program on dp->ifindex */
bool kha_dp_attached(const struct kha_dp *dp);

/* Close fds and mappings; pins and the link stay (forwarding goes on). */
void kha_dp_close(struct kha_dp *dp);

/*
 * Remove the data plane: unpin link_xdp and every map pin this module
 * makes, close (which detaches the XDP program since no pin or fd holds
 * the link any more), and remove <dir> and <pin_root> if left empty.
 * Pins made by others in <dir> are left (callers detach those first).
 */
void kha_dp_destroy(struct kha_dp *dp);

/*
 * `kha-xdp detach`: remove whatever is pinned for ifname under pin_root,
 * even if the maps cannot be opened. Returns 0, or -ENOENT when there was
 * nothing to remove.
 */
int kha_dp_detach_pins(const char *ifname, const char *pin_root);

/*
 * One daemon per data plane: an exclusive flock(2) on <pin_root>/<ifname>/
 * (created if missing). Returns the fd holding the lock (keep it open for
 * the life of the daemon), -EWOULDBLOCK when another process holds it, or
 * another -errno. The CLI's detach uses it to refuse under a live daemon.
 */
int kha_dp_lock(const char *ifname, const char *pin_root);

/* Program the SNAT range (host order, inclusive) and the node address. */
int kha_dp_set_lb_config(struct kha_dp *dp, uint16_t snat_lo, uint16_t snat_hi,
			 struct kha_addr local_addr);
int kha_dp_get_lb_config(struct kha_dp *dp, struct kha_lb_config *out);

/*
 * Make the maps match the desired state `vips[0..n-1]`: VIP ids and backend
 * ids are matched against what the maps hold (by address and port), kept
 * when they match, allocated otherwise, and freed for what disappeared;
 * backend flags and weights are written; every VIP's Maglev table is
 * rebuilt and published. Backends that stay keep their ids, so their
 * connection-table entries stay valid. Writes ids back into `vips`.
 */
int kha_dp_sync(struct kha_dp *dp, struct kha_dp_vip *vips, int n);

/*
 * After a health or weight change of one VIP's backends (ids already
 * assigned by kha_dp_sync): write their flags and weights and publish the
 * VIP's new table. Cheap; `ps` (may be NULL) gets the timing.
 */
int kha_dp_update_vip(struct kha_dp *dp, struct kha_dp_vip *vip,
		      struct kha_dp_pubstat *ps);

/*
 * Build `ring` (ring_size slots) for `vip` from its healthy backends with
 * weight > 0, and publish it: written into the inactive generation, then
 * vip_state.active_gen flipped with one map update. Returns the number of
 * backends with slots in *nr_in_ring. Exposed for tests.
 */
int kha_dp_publish(struct kha_dp *dp, struct kha_dp_vip *vip,
		   struct kha_dp_pubstat *ps);

/* Read the published state of VIP `vip_id` and the table currently active. */
int kha_dp_vip_state(struct kha_dp *dp, uint32_t vip_id,
		     struct kha_vip_state *st);
/*
 * Copy one generation of one VIP's table (ring_size slots) out of the
 * mmap, as Maglev ids (KHA_NO_BACKEND for an empty slot). The mmap is a
 * flat __u16 array (headers/kha_abi.h, struct kha_ring_line).
 */
/* Backend id in published ring slot @g (kha_ring_index()), or KHA_NO_BACKEND. */
uint32_t kha_dp_ring_get(const struct kha_dp *dp, uint32_t g);
int kha_dp_read_ring(const struct kha_dp *dp, uint32_t vip_id, uint32_t gen,
		     uint32_t *out);

/* Sum of a per-CPU counter slot over every possible CPU. */
int kha_dp_vip_counters(struct kha_dp *dp, uint32_t vip_id,
			struct kha_counters *out);
int kha_dp_backend_counters(struct kha_dp *dp, uint32_t be_id,
			    struct kha_counters *out);
int kha_dp_reasons(struct kha_dp *dp, struct kha_reasons *out);
/* Name of reason i (KHA_REASONS order), NULL past the end. */
const char *kha_reason_name(unsigned int i);

/*
 * Established connections per backend id: the live slots of `conntrack`
 * (stamp within KHA_SNAT_IDLE_TICKS of now; user/flows.h), counted through
 * an mmap of the table; counts[KHA_MAX_BACKENDS]. Returns the total or
 * -errno (-EPROTO: the map is not a flow table of this build).
 */
int kha_dp_conn_counts(struct kha_dp *dp, uint32_t *counts);

/*
 * The state as the maps hold it (for `status` without a daemon, and for
 * adoption): VIPs with their backends (flags in *flags, per backend id).
 */
struct kha_dp_view_backend {
	uint32_t id;
	struct kha_backend be;
};
struct kha_dp_view_vip {
	struct kha_vip_key key;
	struct kha_vip vip;
	struct kha_vip_state state;
	int nr_backends;
	struct kha_dp_view_backend backends[KHA_MAX_BACKENDS];
};
int kha_dp_read_view(struct kha_dp *dp, struct kha_dp_view_vip *vips,
		     int max, int *n);

/* "10.0.0.1:6443" into buf (>= 24 bytes); returns buf. */
const char *kha_addr_port_str(const struct kha_addr *a, uint16_t port,
			      char *buf, size_t len);

/* true when addr is assigned to an interface of this network namespace */
bool kha_addr_is_local(const struct kha_addr *a);

#endif /* KHA_MAPS_H */
