// SPDX-License-Identifier: GPL-2.0
/*
 * The flow tables from user space: bpf/flows.h's find and claim rules over
 * an mmap of the array maps (see flows.h). Change both together.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>

#include "flows.h"

/* the data plane claims and chains by these offsets (bpf/flows.h) */
_Static_assert(sizeof(struct kha_ct_slot) == 64, "conntrack slot: one line");
_Static_assert(sizeof(struct kha_snat_slot) == 64, "snat slot: one line");
_Static_assert(offsetof(struct kha_ct_slot, chain) == 4 &&
	       offsetof(struct kha_snat_slot, chain) == 4, "chain at byte 4");
_Static_assert((KHA_FLOW_SLOTS & (KHA_FLOW_SLOTS - 1)) == 0,
	       "KHA_FLOW_SLOTS: a power of two");
_Static_assert((KHA_CT_SYN_SLOTS & (KHA_CT_SYN_SLOTS - 1)) == 0 &&
		       KHA_CT_SYN_WAYS <= KHA_CT_SYN_SLOTS,
	       "KHA_CT_SYN_SLOTS: a power of two, at least a line");
/* the map's lines, read through the mmap as KHA_CT_SYN_SLOTS entries */
_Static_assert(sizeof(struct kha_ct_syn_line) == KHA_CT_SYN_WAYS * 8 &&
		       KHA_CT_SYN_LINES * KHA_CT_SYN_WAYS == KHA_CT_SYN_SLOTS,
	       "a ct_syn line is KHA_CT_SYN_WAYS __u64 entries");

size_t kha_flows_len(size_t value_size, uint32_t max_entries)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = (size_t)max_entries * ((value_size + 7) & ~(size_t)7);

	return (len + pg - 1) / pg * pg;
}

int kha_flows_map(int fd, size_t value_size, uint32_t slots, void **mem,
		  size_t *len)
{
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	void *m;

	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY ||
	    !(info.map_flags & BPF_F_MMAPABLE) ||
	    info.value_size != value_size ||
	    info.max_entries != slots ||
	    (slots != KHA_FLOW_SLOTS && slots != KHA_CT_SYN_LINES))
		return -EPROTO;
	*len = kha_flows_len(value_size, info.max_entries);
	m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	*mem = m;
	return 0;
}

void kha_flows_unmap(void *mem, size_t len)
{
	if (mem)
		munmap(mem, len);
}

uint32_t kha_flow_now(void)
{
	struct timespec ts;

	/* bpf_ktime_get_coarse_ns() is this clock */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return kha_flow_tick((uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec);
}

static uint32_t stamp_of(const uint32_t *stamp)
{
	return __atomic_load_n(stamp, __ATOMIC_ACQUIRE);
}

static bool addr_eq(const struct kha_addr *a, const struct kha_addr *b)
{
	return !memcmp(a, b, sizeof(*a));
}

struct kha_ct_slot *kha_ct_find(struct kha_ct_slot *tab,
				const struct kha_flow_key *k)
{
	uint32_t home = kha_ct_home(k), i;

	for (i = 0; i < KHA_FLOW_PROBES; i++) {
		struct kha_ct_slot *s = &tab[kha_flow_probe(home, i)];

		if (stamp_of(&s->stamp) && !memcmp(&s->key, k, sizeof(*k)))
			return s;
		if (!s->chain)
			return NULL;
	}
	return NULL;
}

struct kha_snat_slot *kha_ct_syn_find(const uint64_t *syn,
				      struct kha_snat_slot *snat,
				      const struct kha_flow_key *k,
				      uint32_t *idx)
{
	uint32_t home = kha_ct_home(k), i;

	for (i = 0; i < KHA_CT_SYN_WAYS; i++) {
		uint32_t ix = kha_ct_syn_probe(home, i);
		uint64_t e = __atomic_load_n(&syn[ix], __ATOMIC_ACQUIRE);
		struct kha_snat_slot *s;

		if (!kha_ct_syn_stamp(e) ||
		    kha_ct_syn_etag(e) != kha_ct_syn_tag(home) ||
		    kha_ct_syn_sidx(e) >= KHA_FLOW_SLOTS)
			continue;
		s = &snat[kha_ct_syn_sidx(e)];
		if (stamp_of(&s->stamp) &&
		    kha_snat_of_flow(s, k->src.v4, k->sport, k->dst.v4,
				     k->dport)) {
			if (idx)
				*idx = ix;
			return s;
		}
	}
	return NULL;
}

static bool snat_key_eq(const struct kha_snat_slot *s,
			const struct kha_addr *backend, __be16 bport,
			__be16 port, const struct kha_addr *client)
{
	if (s->backend_port != bport || s->port != port ||
	    !addr_eq(&s->backend, backend))
		return false;
	if (client)
		return (s->flags & KHA_SNAT_F_LOCAL) &&
		       addr_eq(&s->client, client);
	return !(s->flags & KHA_SNAT_F_LOCAL);
}

struct kha_snat_slot *kha_snat_find(struct kha_snat_slot *tab,
				    const struct kha_addr *backend,
				    __be16 bport, __be16 port,
				    const struct kha_addr *client)
{
	uint32_t home = kha_snat_home(backend, bport, port, client), i;

	/* a remote entry lives in its home slot only (bpf/flows.h) */
	for (i = 0; i < (client ? KHA_FLOW_PROBES : 1); i++) {
		struct kha_snat_slot *s = &tab[kha_flow_probe(home, i)];

		if (stamp_of(&s->stamp) &&
		    snat_key_eq(s, backend, bport, port, client))
			return s;
		if (!s->chain)
			return NULL;
	}
	return NULL;
}

/*
 * Both slot types start { __u32 stamp; __u8 chain; ... }: the free probe
 * of @home in a table of @stride-byte slots, the slots before it chained.
 */
static int free_probe(void *tab, size_t stride, uint32_t home)
{
	uint32_t i, j;

	for (i = 0; i < KHA_FLOW_PROBES; i++) {
		uint8_t *s = (uint8_t *)tab +
			     (size_t)kha_flow_probe(home, i) * stride;

		if (stamp_of((const uint32_t *)s))
			continue;
		for (j = 0; j < i; j++)
			((uint8_t *)tab)[(size_t)kha_flow_probe(home, j) *
					 stride + 4] = 1;
		return (int)kha_flow_probe(home, i);
	}
	return -ENOSPC;
}

/* copy everything but the stamp, keep the slot's chain, then publish */
static void publish(void *slot, const void *v, size_t size)
{
	uint8_t *d = slot, chain = d[4];
	uint32_t stamp;

	memcpy(d + 4, (const uint8_t *)v + 4, size - 4);
	d[4] = chain | ((const uint8_t *)v)[4];
	memcpy(&stamp, v, sizeof(stamp));
	__atomic_store_n((uint32_t *)d, stamp, __ATOMIC_RELEASE);
}

int kha_ct_put(struct kha_ct_slot *tab, const struct kha_ct_slot *v)
{
	int idx;

	if (!v->stamp)
		return -EINVAL;
	idx = free_probe(tab, sizeof(*tab), kha_ct_home(&v->key));
	if (idx >= 0)
		publish(&tab[idx], v, sizeof(*v));
	return idx;
}

int kha_snat_put(struct kha_snat_slot *tab, const struct kha_snat_slot *v)
{
	const struct kha_addr *client =
		v->flags & KHA_SNAT_F_LOCAL ? &v->client : NULL;
	uint32_t home = kha_snat_home(&v->backend, v->backend_port, v->port,
				      client);
	int idx;

	if (!v->stamp)
		return -EINVAL;
	if (!client) { /* a remote entry: its home slot or nothing */
		if (stamp_of(&tab[kha_flow_probe(home, 0)].stamp))
			return -ENOSPC;
		idx = (int)kha_flow_probe(home, 0);
	} else {
		idx = free_probe(tab, sizeof(*tab), home);
	}
	if (idx >= 0)
		publish(&tab[idx], v, sizeof(*v));
	return idx;
}

/*
 * A stamp up to two ticks ahead of @now, which the data plane wrote while
 * we walked (its flows keep stamping; u32 arithmetic would call them long
 * dead): live for a count.
 */
static bool ahead(uint32_t stamp, uint32_t now)
{
	return stamp && stamp - now <= 2;
}

/* Live at @now for a count: as kha_flow_live(), or ahead(). */
static bool counted(uint32_t stamp, uint32_t now)
{
	return kha_flow_live(stamp, now) || ahead(stamp, now);
}

long kha_ct_count(const struct kha_ct_slot *tab, uint32_t now,
		  uint32_t *per_backend)
{
	long n = 0;
	uint32_t i;

	if (per_backend)
		memset(per_backend, 0, KHA_MAX_BACKENDS * sizeof(*per_backend));
	for (i = 0; i < KHA_FLOW_SLOTS; i++) {
		if (!counted(stamp_of(&tab[i].stamp), now))
			continue;
		n++;
		if (per_backend && tab[i].backend_id < KHA_MAX_BACKENDS)
			per_backend[tab[i].backend_id]++;
	}
	return n;
}

long kha_ct_syn_count(const uint64_t *syn, const struct kha_snat_slot *snat,
		      uint32_t now, uint32_t *per_backend)
{
	long n = 0;
	uint32_t i, st, b;

	for (i = 0; i < KHA_CT_SYN_SLOTS; i++) {
		uint64_t e = __atomic_load_n(&syn[i], __ATOMIC_ACQUIRE);

		st = kha_ct_syn_stamp(e);
		if (kha_ct_syn_moved(e) ||
		    !(kha_ct_syn_live(st, now) || ahead(st, now)))
			continue;
		n++;
		if (!per_backend || kha_ct_syn_sidx(e) >= KHA_FLOW_SLOTS)
			continue;
		b = snat[kha_ct_syn_sidx(e)].backend_id;
		if (b < KHA_MAX_BACKENDS)
			per_backend[b]++;
	}
	return n;
}

long kha_snat_count(const struct kha_snat_slot *tab, uint32_t now)
{
	long n = 0;
	uint32_t i;

	for (i = 0; i < KHA_FLOW_SLOTS; i++)
		n += counted(stamp_of(&tab[i].stamp), now);
	return n;
}

long kha_flows_used(const void *tab, size_t stride, size_t n)
{
	long used = 0;
	size_t i;

	for (i = 0; i < n; i++)
		used += !!stamp_of((const uint32_t *)((const uint8_t *)tab +
						      i * stride));
	return used;
}

void kha_flows_clear(void *tab, size_t len)
{
	memset(tab, 0, len);
}
