// SPDX-License-Identifier: GPL-2.0
/*
 * Weighted Maglev table construction (Eisenbud et al., NSDI 2016, section
 * 3.4), with Katran's weighting: in every round each backend accumulates its
 * weight and takes one turn per max_weight accumulated, so a backend of
 * weight w gets w / sum(weights) of the slots, within one slot.
 *
 * Node independence: the permutation of a backend is derived from its
 * address bytes and port only, and backends take their turns in the order of
 * (address, port), not in array order. Two LB nodes with the same healthy set
 * therefore build byte-identical tables whatever ids or array positions they
 * use (the ids written into the slots are of course each node's own).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"
#include "../headers/kha_hash.h"

/* Two unrelated seeds, so offset and skip are independent hashes. */
#define MAGLEV_SEED_OFFSET 0x6a09e667u
#define MAGLEV_SEED_SKIP 0xbb67ae85u

int maglev_size_ok(uint32_t n)
{
	uint32_t d;

	if (n < 3 || n > KHA_RING_SIZE_MAX || !(n & 1))
		return 0;
	for (d = 3; d * d <= n; d += 2)
		if (n % d == 0)
			return 0;
	return 1;
}

/*
 * The address as bytes, assembled into words explicitly so the hash is the
 * same on every byte order (the address is stored in network order).
 */
static uint32_t addr_word(const struct kha_addr *a, int i)
{
	const uint8_t *p = (const uint8_t *)&a->v6[i];

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t backend_hash(const struct maglev_backend *b, uint32_t seed)
{
	uint32_t h = seed;
	int i;

	for (i = 0; i < 4; i++)
		h = kha_fmix32(h ^ addr_word(&b->addr, i));
	return kha_fmix32(h ^ b->port);
}

/* Canonical order: address bytes, then port. */
static int backend_cmp(const void *x, const void *y)
{
	const struct maglev_backend *a = *(const struct maglev_backend *const *)x;
	const struct maglev_backend *b = *(const struct maglev_backend *const *)y;
	int r = memcmp(&a->addr, &b->addr, sizeof(a->addr));

	if (r)
		return r;
	return (int)a->port - (int)b->port;
}

struct maglev_perm {
	uint32_t id;
	uint32_t weight;
	uint32_t pos;  /* next candidate slot: offset + k * skip (mod size) */
	uint32_t skip;
	uint64_t acc;  /* accumulated weight this backend has not spent yet */
};

int maglev_build(const struct maglev_backend *b, int n, uint32_t *ring,
		 uint32_t size)
{
	const struct maglev_backend **sorted = NULL;
	struct maglev_perm *p = NULL;
	uint32_t max_weight = 0, filled = 0, i;
	int m = 0, k, err = 0;

	if (n < 0 || (n > 0 && !b) || !ring || !maglev_size_ok(size))
		return -EINVAL;

	for (i = 0; i < size; i++)
		ring[i] = KHA_NO_BACKEND;

	for (k = 0; k < n; k++) {
		if (!b[k].weight)
			continue;
		/* the id doubles as the "slot free" sentinel */
		if (b[k].id == KHA_NO_BACKEND)
			return -EINVAL;
		m++;
	}
	if (!m)
		return 0;

	sorted = calloc(m, sizeof(*sorted));
	p = calloc(m, sizeof(*p));
	if (!sorted || !p) {
		err = -ENOMEM;
		goto out;
	}
	for (k = 0, m = 0; k < n; k++)
		if (b[k].weight)
			sorted[m++] = &b[k];
	qsort(sorted, m, sizeof(*sorted), backend_cmp);

	for (k = 0; k < m; k++) {
		const struct maglev_backend *be = sorted[k];

		/*
		 * The same address:port twice would make the result depend on
		 * input order (and is a configuration error anyway).
		 */
		if (k && !backend_cmp(&sorted[k - 1], &sorted[k])) {
			err = -EINVAL;
			goto out;
		}
		p[k].id = be->id;
		p[k].weight = be->weight;
		p[k].pos = backend_hash(be, MAGLEV_SEED_OFFSET) % size;
		p[k].skip = backend_hash(be, MAGLEV_SEED_SKIP) % (size - 1) + 1;
		if (be->weight > max_weight)
			max_weight = be->weight;
	}

	/*
	 * Every round, each backend gains its weight; each time its
	 * accumulator reaches max_weight it claims the next free slot of its
	 * own permutation. The heaviest backend claims one slot per round, so
	 * the loop ends after about size / (sum(w) / max_w) rounds.
	 */
	while (filled < size) {
		for (k = 0; k < m && filled < size; k++) {
			struct maglev_perm *e = &p[k];

			e->acc += e->weight;
			if (e->acc < max_weight)
				continue;
			e->acc -= max_weight;
			/* size is prime and skip < size: the walk visits every slot */
			while (ring[e->pos] != KHA_NO_BACKEND) {
				e->pos += e->skip;
				if (e->pos >= size)
					e->pos -= size;
			}
			ring[e->pos] = e->id;
			e->pos += e->skip;
			if (e->pos >= size)
				e->pos -= size;
			filled++;
		}
	}
out:
	free(sorted);
	free(p);
	if (err)
		for (i = 0; i < size; i++)
			ring[i] = KHA_NO_BACKEND;
	return err;
}

uint32_t maglev_lookup(const uint32_t *ring, uint32_t size,
		       const struct kha_addr *client)
{
	if (!ring || !size)
		return KHA_NO_BACKEND;
	return ring[kha_slot_of(client, size)];
}
