/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The flow tables `conntrack` and `snat` seen from user space: the same
 * open-addressing rules as bpf/flows.h (headers/kha_abi.h, "flow tables"),
 * over a slot array in memory, which is what an mmap of the BPF_F_MMAPABLE
 * array map is. `status` counts connections with it; tests plant and find
 * entries with it.
 *
 * Pure logic (find, put, count, clear) takes the table as a pointer to
 * KHA_FLOW_SLOTS slots (kha_flow_probe() masks with KHA_FLOW_SLOTS - 1) and
 * the time as a tick, so a unit test drives it with calloc'ed memory and a
 * fake clock. kha_flows_map() and kha_flow_now() are the I/O.
 *
 * A table is live under the data plane: these functions read each stamp
 * once, atomically; a put publishes its slot by writing the stamp last.
 * They do not take slots from expired flows (the data plane does that when
 * it needs one), so a put into a table full of dead flows fails.
 */
#ifndef KHA_FLOWS_H
#define KHA_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../headers/kha_abi.h"
#include "../headers/kha_hash.h"

/* Bytes of the mmap of an array map of @value_size values (page rounded). */
size_t kha_flows_len(size_t value_size, uint32_t max_entries);

/*
 * mmap a flow table's map fd read-write, shared. Checks that the map is an
 * mmapable array of @slots values of @value_size bytes (KHA_FLOW_SLOTS, or
 * KHA_CT_SYN_LINES of struct kha_ct_syn_line for ct_syn, read as
 * KHA_CT_SYN_SLOTS __u64: the only shapes the probe arithmetic is valid
 * for): -EPROTO otherwise, or -errno.
 */
int kha_flows_map(int fd, size_t value_size, uint32_t slots, void **mem,
		  size_t *len);
void kha_flows_unmap(void *mem, size_t len);

/* The data plane's clock, as a stamp: CLOCK_MONOTONIC_COARSE ticks. */
uint32_t kha_flow_now(void);

/* ns of CLOCK_MONOTONIC(_COARSE) -> tick, as bpf/flows.h flow_ticks() */
static inline uint32_t kha_flow_tick(uint64_t ns)
{
	return (uint32_t)(ns >> KHA_SNAT_TICK_SHIFT) + KHA_TICK_BASE;
}

/* A slot with this stamp holds a flow that may not be taken at @now. */
static inline bool kha_flow_live(uint32_t stamp, uint32_t now)
{
	return stamp && now - stamp <= KHA_SNAT_IDLE_TICKS;
}

/* The flow's conntrack slot (live or expired, not yet taken), or NULL. */
struct kha_ct_slot *kha_ct_find(struct kha_ct_slot *tab,
				const struct kha_flow_key *k);

/*
 * ct_syn, the flows in their handshake (headers/kha_abi.h): 64-bit entries
 * in KHA_CT_SYN_SLOTS, one line of KHA_CT_SYN_WAYS per home, each naming
 * its flow's `snat` slot; live KHA_CT_SYN_TICKS after its last SYN
 * (kha_ct_syn_live()).
 */
/*
 * The flow @k's `snat` slot through its ct_syn entry (live or not; *idx:
 * the entry's index), or NULL. @snat: the snat table.
 */
struct kha_snat_slot *kha_ct_syn_find(const uint64_t *syn,
				      struct kha_snat_slot *snat,
				      const struct kha_flow_key *k,
				      uint32_t *idx);
/*
 * Live ct_syn entries at @now of flows not yet moved to conntrack; adds
 * each to per_backend[] (KHA_MAX_BACKENDS, not zeroed) by its `snat`
 * slot's backend when not NULL.
 */
long kha_ct_syn_count(const uint64_t *syn, const struct kha_snat_slot *snat,
		      uint32_t now, uint32_t *per_backend);

/*
 * The snat slot keyed by the packet a backend sends back: @client NULL for
 * a remote backend (@port = SNAT port), the client for a local backend
 * (@port = client port, KHA_SNAT_F_LOCAL). NULL when absent.
 */
struct kha_snat_slot *kha_snat_find(struct kha_snat_slot *tab,
				    const struct kha_addr *backend,
				    __be16 bport, __be16 port,
				    const struct kha_addr *client);

/*
 * Plant an entry as the data plane would: in the first free (stamp 0)
 * probe of its key's home, chaining the slots passed (a remote snat entry:
 * its home slot only, -ENOSPC if that is taken). @v->stamp must be
 * nonzero; the slot's own `chain` is kept. Returns the slot index,
 * -ENOSPC when no probe is free, -EINVAL for a zero stamp. It does not
 * look for the key first: planting a key twice makes two entries.
 */
int kha_ct_put(struct kha_ct_slot *tab, const struct kha_ct_slot *v);
int kha_snat_put(struct kha_snat_slot *tab, const struct kha_snat_slot *v);

/*
 * Live slots: kha_flow_live() at @now, or stamped up to 2 ticks after @now
 * (by the data plane, during the walk). kha_ct_count() also fills
 * per_backend[KHA_MAX_BACKENDS] (zeroed first) when not NULL.
 */
long kha_ct_count(const struct kha_ct_slot *tab, uint32_t now,
		  uint32_t *per_backend);
long kha_snat_count(const struct kha_snat_slot *tab, uint32_t now);

/* Slots in use (stamp != 0), live or not: n slots of @stride bytes. */
long kha_flows_used(const void *tab, size_t stride, size_t n);

/* Empty a table (every slot free, every chain cut): @len bytes. */
void kha_flows_clear(void *tab, size_t len);

#endif /* KHA_FLOWS_H */
