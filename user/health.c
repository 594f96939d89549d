// SPDX-License-Identifier: GPL-2.0
/*
 * Rise/fall verdicts, pure. haproxy keeps one "health" counter in
 * [0, rise + fall - 1]; we keep the equivalent pair (up, count) because it
 * reads better in status output: `count` consecutive results went against
 * the current verdict, out of `fall` (when UP) or `rise` (when DOWN).
 */
#include <stdio.h>
#include <string.h>

#include "health.h"

static const char *const result_words[KHA_CHK__MAX] = {
	[KHA_CHK_INI] = "INI",       [KHA_CHK_SOCKERR] = "SOCKERR",
	[KHA_CHK_L4OK] = "L4OK",     [KHA_CHK_L4TOUT] = "L4TOUT",
	[KHA_CHK_L4CON] = "L4CON",   [KHA_CHK_L6OK] = "L6OK",
	[KHA_CHK_L6TOUT] = "L6TOUT", [KHA_CHK_L6RSP] = "L6RSP",
	[KHA_CHK_L7OK] = "L7OK",     [KHA_CHK_L7TOUT] = "L7TOUT",
	[KHA_CHK_L7RSP] = "L7RSP",   [KHA_CHK_L7STS] = "L7STS",
};

const char *kha_check_result_str(enum kha_check_result r)
{
	if ((unsigned int)r >= KHA_CHK__MAX)
		return "UNKNOWN";
	return result_words[r];
}

bool kha_check_result_ok(enum kha_check_result r)
{
	return r == KHA_CHK_L4OK || r == KHA_CHK_L6OK || r == KHA_CHK_L7OK;
}

/* A zero rise or fall in a hand-built conf must not make a verdict flap. */
static uint32_t conf_fall(const struct kha_check_conf *c)
{
	return c->fall ? c->fall : 1;
}

static uint32_t conf_rise(const struct kha_check_conf *c)
{
	return c->rise ? c->rise : 1;
}

void kha_health_init(struct kha_health *h, const struct kha_check_conf *c,
		     enum kha_health_start start, uint64_t now_ms)
{
	memset(h, 0, sizeof(*h));
	h->last = KHA_CHK_INI;
	h->change_result = KHA_CHK_INI;
	h->last_change_ms = now_ms;
	switch (start) {
	case KHA_START_DOWN:
		h->up = false;
		break;
	case KHA_START_UP:
		h->up = true;
		break;
	case KHA_START_PROVISIONAL:
	default:
		/* haproxy: health = rise, one failure below UP */
		h->up = true;
		h->count = conf_fall(c) - 1;
		break;
	}
}

bool kha_health_report(struct kha_health *h, const struct kha_check_conf *c,
		       enum kha_check_result r, int http_status,
		       const char *detail, uint32_t duration_ms,
		       uint64_t now_ms)
{
	bool ok = kha_check_result_ok(r);
	uint32_t need;

	if (r == KHA_CHK_INI || (unsigned int)r >= KHA_CHK__MAX)
		return false;
	h->last = r;
	h->last_status = http_status;
	h->last_duration_ms = duration_ms;
	h->last_check_ms = now_ms;
	snprintf(h->last_detail, sizeof(h->last_detail), "%s",
		 detail ? detail : "");
	h->checks++;
	if (!ok)
		h->failures++;

	if (ok == h->up) {
		/* agrees with the verdict: any pending transition is off */
		h->count = 0;
		return false;
	}
	need = h->up ? conf_fall(c) : conf_rise(c);
	/* a conf change may have lowered rise/fall below the count */
	if (++h->count < need)
		return false;
	h->up = ok;
	h->count = 0;
	h->last_change_ms = now_ms;
	h->change_result = r;
	h->transitions++;
	return true;
}

uint32_t kha_health_next_interval(const struct kha_health *h,
				  const struct kha_check_conf *c)
{
	uint32_t inter = c->inter ? c->inter : 2000;
	uint32_t fast = c->fastinter ? c->fastinter : inter;

	/* haproxy's srv_getinter(): downinter when fully down, inter when
	 * fully up, fastinter in between (and when fully down without a
	 * downinter) */
	if (!h->up && !h->count)
		return c->downinter ? c->downinter : fast;
	if (h->up && !h->count)
		return inter;
	return fast;
}

uint32_t kha_check_timeout(const struct kha_check_conf *c)
{
	uint32_t inter = c->inter ? c->inter : 2000;

	if (!c->timeout || c->timeout > inter)
		return inter;
	return c->timeout;
}

const char *kha_health_reason(const struct kha_health *h, char *buf,
			      size_t len)
{
	const char *word = kha_check_result_str(h->last);

	if (h->last_status && h->last_detail[0])
		snprintf(buf, len, "%s %d %s", word, h->last_status,
			 h->last_detail);
	else if (h->last_status)
		snprintf(buf, len, "%s %d", word, h->last_status);
	else if (h->last_detail[0])
		snprintf(buf, len, "%s %s", word, h->last_detail);
	else
		snprintf(buf, len, "%s", word);
	return buf;
}
