// SPDX-License-Identifier: GPL-2.0
/*
 * Packet path 5: local clients. Processes on an LB node (controller-manager,
 * scheduler, kubelet on the masters) connect to VIP:8443 like everyone
 * else, but their packets never cross the node's XDP hook, so the choice of
 * backend is made here, at connect() time, from the same Maglev table:
 *
 *   connect4      connect(VIP:vip_port) over TCP becomes connect(backend),
 *                 the backend the node's own address (lb_config.local_addr)
 *                 hashes to, exactly the one XDP would give a remote client
 *                 with that address. The original destination is kept in
 *                 the socket's local storage.
 *   getpeername4  shows VIP:vip_port back for such a socket.
 *
 * Why the node address and not a per-socket hash: docs/local.md.
 *
 * A cgroup hook sees every process in the cgroup whatever its network
 * namespace, and the VIP, the table and the backend addresses belong to one
 * namespace (the node's). Both programs therefore act only when the socket
 * lives in the namespace they were loaded for (netns_cookie, fixed at load
 * time by user/local.c) and return 1 (proceed unchanged) otherwise; a
 * cookie of 0 (kha_local_opts.all_netns) makes them act everywhere.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps.h"
#include "kha_hash.h"

#define KHA_SOCK_STREAM 1 /* SOCK_STREAM; no libc in BPF */

/* the network namespace this hook serves; 0: every namespace */
const volatile __u64 netns_cookie = 0;

static __always_inline int other_netns(struct bpf_sock_addr *ctx)
{
	return netns_cookie && bpf_get_netns_cookie(ctx) != netns_cookie;
}

/* What a redirected socket connected to, for getpeername(). */
struct kha_local_peer {
	__be32 vip;
	__be32 backend;
	__be16 vip_port;
	__be16 backend_port;
	__u32 vip_id;
};

/* Private to the cgroup programs; pinned as <pin_dir>/local_peer. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kha_local_peer);
} local_peer SEC(".maps");

/*
 * The backend the node's own address maps to in the VIP's published table,
 * or NULL (empty table, no config, backend not usable).
 */
static __always_inline struct kha_backend *pick_backend(__u32 vip_id)
{
	struct kha_lb_config *cfg;
	struct kha_vip_state *st;
	struct kha_backend *be;
	__u32 zero = 0, idx, slot, gen;

	cfg = bpf_map_lookup_elem(&lb_config, &zero);
	st = bpf_map_lookup_elem(&vip_state, &vip_id);
	if (!cfg || !st || !cfg->ring_size)
		return NULL;
	gen = st->active_gen & 1; /* read once: the table we use */
	slot = kha_slot_of(&cfg->local_addr, cfg->ring_size);
	idx = kha_ring_index(vip_id, gen, slot, cfg->ring_size);
	idx = kha_ring_get(idx);
	if (idx == KHA_RING_NONE)
		return NULL;
	be = bpf_map_lookup_elem(&backends, &idx);
	/*
	 * The table holds healthy backends only; the flag check covers the
	 * moment between a backend failing and its new table being published.
	 */
	if (!be || be->family != KHA_AF_INET ||
	    (be->flags & (KHA_BE_F_PRESENT | KHA_BE_F_HEALTHY)) !=
		    (KHA_BE_F_PRESENT | KHA_BE_F_HEALTHY))
		return NULL;
	return be;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	struct kha_vip_key vkey = {};
	struct kha_local_peer *peer;
	struct kha_backend *be;
	struct kha_vip *vip;
	struct bpf_sock *sk;

	if (other_netns(ctx))
		return 1;
	if (ctx->user_family != 2 /* AF_INET */ ||
	    ctx->type != KHA_SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;

	vkey.addr.v4 = ctx->user_ip4;
	vkey.port = (__be16)ctx->user_port;
	vkey.proto = IPPROTO_TCP;
	vkey.family = KHA_AF_INET;
	vip = bpf_map_lookup_elem(&vips, &vkey);
	if (!vip) {
		/* a socket re-connecting elsewhere must not keep a VIP name */
		bpf_sk_storage_delete(&local_peer, sk);
		return 1;
	}

	/*
	 * Empty table: leave the connect alone. It then goes to the VIP
	 * over the network like a remote client's (or, on the VIP holder,
	 * finds nothing on VIP:vip_port and gets ECONNREFUSED), which is
	 * the answer the VIP holder's own view of health gives.
	 */
	be = pick_backend(vip->vip_id);
	if (!be) {
		bpf_sk_storage_delete(&local_peer, sk);
		return 1;
	}

	peer = bpf_sk_storage_get(&local_peer, sk, 0,
				  BPF_SK_STORAGE_GET_F_CREATE);
	if (peer) {
		peer->vip = ctx->user_ip4;
		peer->vip_port = (__be16)ctx->user_port;
		peer->backend = be->addr.v4;
		peer->backend_port = be->port;
		peer->vip_id = vip->vip_id;
	}
	/*
	 * Without storage getpeername() shows the backend: cosmetic, so the
	 * connection still goes where it must.
	 */
	ctx->user_ip4 = be->addr.v4;
	ctx->user_port = (__u32)be->port;
	return 1;
}

SEC("cgroup/getpeername4")
int getpeername4(struct bpf_sock_addr *ctx)
{
	struct kha_local_peer *peer;
	struct bpf_sock *sk;

	if (other_netns(ctx))
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	peer = bpf_sk_storage_get(&local_peer, sk, 0, 0);
	/* only while the socket is still connected to what we chose */
	if (!peer || ctx->user_ip4 != peer->backend ||
	    (__be16)ctx->user_port != peer->backend_port)
		return 1;
	ctx->user_ip4 = peer->vip;
	ctx->user_port = (__u32)peer->vip_port;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
