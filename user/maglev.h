/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted. Pure:
 * no maps, no I/O; the daemon, the CLI and the tests all build tables here.
 *
 * A backend's permutation depends only on its address and port, never on
 * its id or its position in the array, so every LB node with the same
 * healthy set builds the same table, whatever ids it assigned.
 */
#ifndef KHA_MAGLEV_H
#define KHA_MAGLEV_H

#include <stdint.h>
#include "../headers/kha_abi.h"

struct maglev_backend {
	struct kha_addr addr;
	uint16_t port;   /* host order */
	uint32_t weight; /* 0: no slots */
	uint32_t id;     /* written into the slots it owns */
};

/* true when n is a prime usable as a table size (>= 3, <= KHA_RING_SIZE_MAX) */
int maglev_size_ok(uint32_t n);

/*
 * Fill ring[0..size-1] with backend ids. Backends with weight 0 get no slot;
 * when no backend has weight > 0 every slot is KHA_NO_BACKEND. Returns 0 or
 * -EINVAL (bad size, n < 0) / -ENOMEM.
 */
int maglev_build(const struct maglev_backend *b, int n, uint32_t *ring,
		 uint32_t size);

/* The id a client address maps to (what the data plane will pick). */
uint32_t maglev_lookup(const uint32_t *ring, uint32_t size,
		       const struct kha_addr *client);

#endif /* KHA_MAGLEV_H */
