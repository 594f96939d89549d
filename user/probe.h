/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Health probes: non-blocking TCP connect, HTTP and HTTPS (OpenSSL) checks
 * of every backend of every VIP, all on the daemon's one event loop (no
 * threads). Verdicts come from health.h; each UP <-> DOWN transition is
 * logged once (log_notice "health") and reported through the callback.
 *
 * Backends are identified by (VIP addr:port, backend addr:port): across
 * kha_prober_configure() calls a backend that stays keeps its state, even
 * if its position in the config changed. docs/health.md has the details.
 */
#ifndef KHA_PROBE_H
#define KHA_PROBE_H

#include <stdint.h>

#include "config.h"
#include "health.h"
#include "loop.h"

struct kha_prober;

/*
 * Called once per transition (h->up is the new verdict), from the loop, with
 * indices into the config last given to kha_prober_configure(). The callback
 * may call kha_prober_get(); it must not call kha_prober_configure() or
 * kha_prober_free().
 */
typedef void (*kha_health_cb)(void *arg, int vip_idx, int be_idx,
			      const struct kha_health *h);

struct kha_prober *kha_prober_new(struct kha_loop *loop, kha_health_cb cb,
				  void *arg);

/*
 * How backends that are new to the prober start (default
 * KHA_START_PROVISIONAL, haproxy's: UP until the first check fails). Affects
 * later kha_prober_configure() calls only.
 */
void kha_prober_set_start(struct kha_prober *p, enum kha_health_start start);

/*
 * (Re)configure from cfg. Backends that stay keep their state and their
 * schedule (an in-flight check is restarted only if its check settings
 * changed); new ones start as set by kha_prober_set_start() and get their
 * first check spread over their first interval; removed ones are stopped.
 * Backends with check type KHA_CHECK_NONE are always UP and never probed.
 * The callback is not called from here: read the states with
 * kha_prober_get(). Returns 0 or -ENOMEM (the previous set stays in force).
 */
int kha_prober_configure(struct kha_prober *p, const struct kha_config *cfg);

/*
 * Override the start state of one backend that has not completed a check
 * yet (e.g. a restarted daemon seeding from the pinned table what it knew).
 * Returns 0, -ENOENT (no such backend) or -EBUSY (already checked).
 */
int kha_prober_seed(struct kha_prober *p, int vip_idx, int be_idx,
		    enum kha_health_start start);

/* NULL when out of range */
const struct kha_health *kha_prober_get(const struct kha_prober *p,
					int vip_idx, int be_idx);

/* Scheduling statistics, for tests and the status page. */
struct kha_prober_stats {
	uint64_t started;    /* checks started */
	uint64_t completed;  /* checks completed (ok or failed) */
	uint32_t in_flight;  /* checks running now */
	uint32_t max_lag_ms; /* worst start delay behind schedule */
	uint64_t sum_lag_ms; /* over `started`, for a mean */
};
void kha_prober_stats(const struct kha_prober *p, struct kha_prober_stats *st);
void kha_prober_reset_stats(struct kha_prober *p);

/* Stops every check, closes every socket. NULL is fine. */
void kha_prober_free(struct kha_prober *p);

#endif /* KHA_PROBE_H */
