/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Health verdicts from probe results: haproxy's rise/fall logic, pure. No
 * sockets and no clock of its own: the caller passes every result and the
 * time it was obtained, so unit tests drive it with a fake clock.
 *
 * Meaning (docs/health.md):
 *   - an UP backend goes DOWN after `fall` consecutive failed checks;
 *   - a DOWN backend goes UP after `rise` consecutive successful checks;
 *   - a result of the other kind in between resets the count;
 *   - the next check is due after `inter` when settled UP, `fastinter`
 *     while a transition is pending (count > 0), `downinter` when settled
 *     DOWN (each falling back as haproxy's srv_getinter() does).
 */
#ifndef KHA_HEALTH_H
#define KHA_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* haproxy's check status words; kha_check_result_str() gives the word. */
enum kha_check_result {
	KHA_CHK_INI = 0,   /* "INI": no check has completed yet */
	KHA_CHK_SOCKERR,   /* "SOCKERR": local socket error (failure) */
	KHA_CHK_L4OK,      /* "L4OK": TCP connect succeeded */
	KHA_CHK_L4TOUT,    /* "L4TOUT": no answer to the connect in time */
	KHA_CHK_L4CON,     /* "L4CON": refused, unreachable, reset */
	KHA_CHK_L6OK,      /* "L6OK": TLS handshake done (TLS-only check) */
	KHA_CHK_L6TOUT,    /* "L6TOUT": TLS handshake did not finish in time */
	KHA_CHK_L6RSP,     /* "L6RSP": TLS handshake failed (incl. verify) */
	KHA_CHK_L7OK,      /* "L7OK": HTTP status 2xx */
	KHA_CHK_L7TOUT,    /* "L7TOUT": no HTTP status line in time */
	KHA_CHK_L7RSP,     /* "L7RSP": malformed or missing HTTP response */
	KHA_CHK_L7STS,     /* "L7STS": HTTP status other than 2xx */
	KHA_CHK__MAX,
};

/* Probe state of one backend. Plain data: copy it freely. */
struct kha_health {
	bool up;                     /* the verdict the data plane uses */
	uint32_t count;              /* consecutive results against `up`:
				      * failures while UP (DOWN at `fall`),
				      * successes while DOWN (UP at `rise`) */
	enum kha_check_result last;  /* result of the last completed check */
	int last_status;             /* HTTP status of the last check, or 0 */
	uint32_t last_duration_ms;   /* how long the last check took */
	uint64_t last_check_ms;      /* when it completed (0 = never) */
	uint64_t last_change_ms;     /* when `up` last changed (or init) */
	enum kha_check_result change_result; /* result that caused it */
	uint64_t checks;             /* completed checks */
	uint64_t failures;           /* of which failed */
	uint64_t transitions;        /* up <-> down changes */
	char last_detail[96];        /* "Connection refused", "Not Found" */
};

/* How a backend starts (kha_health_init). */
enum kha_health_start {
	/*
	 * haproxy's default: UP, but a single failed check takes it DOWN
	 * (haproxy starts with health = rise). The prober's default for new
	 * backends; see docs/health.md, "Initial state".
	 */
	KHA_START_PROVISIONAL = 0,
	KHA_START_UP,   /* UP, `fall` failures needed to go DOWN */
	KHA_START_DOWN, /* DOWN, `rise` successes needed to go UP */
};

void kha_health_init(struct kha_health *h, const struct kha_check_conf *c,
		     enum kha_health_start start, uint64_t now_ms);

/* true for L4OK, L6OK and L7OK */
bool kha_check_result_ok(enum kha_check_result r);

/*
 * Account one completed check. `http_status` is the parsed status (0 when
 * there is none), `detail` a short human cause (errno text, "HTTP status
 * 500"; NULL = none), `duration_ms` how long the check took. Returns true
 * when the verdict changed (UP <-> DOWN). KHA_CHK_INI is ignored.
 */
bool kha_health_report(struct kha_health *h, const struct kha_check_conf *c,
		       enum kha_check_result r, int http_status,
		       const char *detail, uint32_t duration_ms,
		       uint64_t now_ms);

/* ms until the next check should start, after the last result. */
uint32_t kha_health_next_interval(const struct kha_health *h,
				  const struct kha_check_conf *c);

/* The probe deadline: `timeout`, or `inter` when 0, never above `inter`. */
uint32_t kha_check_timeout(const struct kha_check_conf *c);

/* "L4OK", "L7STS", ...; "UNKNOWN" for out-of-range values */
const char *kha_check_result_str(enum kha_check_result r);

/*
 * The reason in haproxy's words, e.g. "L4CON Connection refused",
 * "L7STS 500", "L7OK 200", "L4TOUT" (the detail is appended when present
 * and not redundant). Returns buf.
 */
const char *kha_health_reason(const struct kha_health *h, char *buf,
			      size_t len);

#endif /* KHA_HEALTH_H */
