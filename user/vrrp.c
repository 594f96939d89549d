// SPDX-License-Identifier: GPL-2.0
/*
 * VRRP v2/v3 for IPv4: packets and the state machine, without I/O.
 *
 * The machine follows RFC 3768 section 6.4 / RFC 5798 section 6.4, with the
 * choices keepalived makes where the RFCs leave room, because a mixed
 * keepalived + kha-xdp group must elect the same master either would:
 *  - received adverts are validated in keepalived's order and with its
 *    rules (exact length, TTL only for multicast, v2 interval mismatch is a
 *    drop, the VIP set must match, v3 unicast checksum also accepted with
 *    the multicast group in the pseudo-header as keepalived < 2.2 sent it);
 *  - a master that hears a lower-priority advert answers at once with its
 *    own advert and a gratuitous ARP, so a split brain ends within one
 *    advert interval and the winner's MAC is what the segment learns; a
 *    master that loses sends one parting advert so the winner hears it;
 *  - preempt_delay counts from start-up or from the first lower-priority
 *    advert, as keepalived's does.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "vrrp.h"

struct vrrp_hdr {
	uint8_t vers_type;
	uint8_t vrid;
	uint8_t priority;
	uint8_t naddr;
	union {
		struct {
			uint8_t auth_type;
			uint8_t adver_int; /* seconds */
		} v2;
		uint16_t v3_adver_int; /* 4 reserved bits + 12 bits cs, BE */
	};
	uint16_t chksum;
} __attribute__((packed));

_Static_assert(sizeof(struct vrrp_hdr) == KHA_VRRP_HDR_LEN, "vrrp header");

/* ---- checksums ---- */

static uint32_t csum_add(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	/* Byte-wise big-endian pairs: alignment-free, endian-free. */
	while (len > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Returns the checksum in network byte order, ready to store. */
uint16_t kha_vrrp_csum(const void *data, size_t len, uint32_t sum)
{
	return htons(csum_fold(csum_add(data, len, sum)));
}

static uint32_t pseudo_sum(uint32_t saddr, uint32_t daddr, size_t len)
{
	uint8_t ph[12];

	memcpy(ph, &saddr, 4);
	memcpy(ph + 4, &daddr, 4);
	ph[8] = 0;
	ph[9] = IPPROTO_VRRP;
	ph[10] = (uint8_t)(len >> 8);
	ph[11] = (uint8_t)len;
	return csum_add(ph, sizeof(ph), 0);
}

uint16_t kha_vrrp_msg_csum(int version, const uint8_t *msg, size_t len,
			   uint32_t saddr, uint32_t daddr)
{
	uint32_t sum = version == 3 ? pseudo_sum(saddr, daddr, len) : 0;

	return kha_vrrp_csum(msg, len, sum);
}

/* ---- timing ---- */

uint8_t kha_vrrp_eff_prio(uint8_t prio, int weight, bool faulty)
{
	int p = prio;

	/* keepalived: the address owner's 255 is never adjusted */
	if (prio == 255 || !faulty || weight <= 0)
		return prio;
	p -= weight;
	if (p < 1)
		p = 1;
	if (p > 254)
		p = 254;
	return (uint8_t)p;
}

uint32_t kha_vrrp_skew_ms(int version, uint8_t prio, uint16_t adver_int_cs)
{
	if (version == 2) /* (256 - Priority) / 256 seconds */
		return (uint32_t)(256 - prio) * 1000 / 256;
	/* ((256 - Priority) * Master_Adver_Interval) / 256 centiseconds */
	return (uint32_t)(256 - prio) * adver_int_cs * 10 / 256;
}

uint32_t kha_vrrp_master_down_ms(int version, uint8_t prio,
				 uint16_t adver_int_cs)
{
	return 3 * (uint32_t)adver_int_cs * 10 +
	       kha_vrrp_skew_ms(version, prio, adver_int_cs);
}

/* ---- encode ---- */

int kha_vrrp_build(const struct kha_vrrp_params *p, uint8_t prio,
		   uint32_t daddr, uint16_t ip_id, uint8_t *buf, size_t size)
{
	size_t mlen = KHA_VRRP_HDR_LEN + 4 * (size_t)p->nr_addrs +
		      (p->version == 2 ? KHA_VRRP_AUTH_LEN : 0);
	size_t len = 20 + mlen;
	uint8_t *m = buf + 20;
	struct vrrp_hdr h = {};
	uint16_t c;

	if (size < len)
		return -ENOSPC;
	memset(buf, 0, len);
	/* IPv4 header as keepalived builds it: TOS internetwork control */
	buf[0] = 0x45;
	buf[1] = 0xc0;
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	buf[4] = (uint8_t)(ip_id >> 8);
	buf[5] = (uint8_t)ip_id;
	buf[8] = KHA_VRRP_TTL;
	buf[9] = IPPROTO_VRRP;
	memcpy(buf + 12, &p->primary, 4);
	memcpy(buf + 16, &daddr, 4);
	c = kha_vrrp_csum(buf, 20, 0);
	memcpy(buf + 10, &c, 2);

	h.vers_type = (uint8_t)(p->version << 4 | KHA_VRRP_TYPE_ADVERT);
	h.vrid = p->vrid;
	h.priority = prio;
	h.naddr = (uint8_t)p->nr_addrs;
	if (p->version == 2) {
		h.v2.auth_type = p->auth_type;
		h.v2.adver_int = (uint8_t)(p->advert_int_cs / 100);
	} else {
		h.v3_adver_int = htons(p->advert_int_cs & 0x0fff);
	}
	memcpy(m, &h, sizeof(h));
	memcpy(m + KHA_VRRP_HDR_LEN, p->addrs, 4 * (size_t)p->nr_addrs);
	if (p->version == 2 && p->auth_type == KHA_VRRP_AUTH_PASS)
		memcpy(m + KHA_VRRP_HDR_LEN + 4 * p->nr_addrs, p->auth_pass,
		       KHA_VRRP_AUTH_LEN);
	c = kha_vrrp_msg_csum(p->version, m, mlen, p->primary, daddr);
	memcpy(m + 6, &c, 2);
	return (int)len;
}

/* ---- decode and validate ---- */

static bool addr_in(uint32_t a, const uint32_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == a)
			return true;
	return false;
}

enum kha_vrrp_drop kha_vrrp_parse(const struct kha_vrrp_params *p,
				  const uint8_t *pkt, size_t len,
				  struct kha_vrrp_advert *a)
{
	struct vrrp_hdr h;
	const uint8_t *m;
	size_t ihl, mlen, expect;
	bool mcast;

	memset(a, 0, sizeof(*a));
	if (len < 20 || pkt[0] >> 4 != 4)
		return KHA_VRRP_DROP_IP;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	if (ihl < 20 || pkt[9] != IPPROTO_VRRP)
		return KHA_VRRP_DROP_IP;
	if (len < ihl + KHA_VRRP_HDR_LEN)
		return KHA_VRRP_DROP_LENGTH;
	a->ttl = pkt[8];
	memcpy(&a->saddr, pkt + 12, 4);
	memcpy(&a->daddr, pkt + 16, 4);
	m = pkt + ihl;
	memcpy(&h, m, sizeof(h));
	a->version = h.vers_type >> 4;
	a->type = h.vers_type & 0x0f;
	a->vrid = h.vrid;
	a->priority = h.priority;
	a->naddr = h.naddr;
	a->checksum = ntohs(h.chksum);
	if (a->version == 2) {
		a->auth_type = h.v2.auth_type;
		a->adver_int_cs = (uint16_t)(h.v2.adver_int * 100);
	} else {
		a->adver_int_cs = ntohs(h.v3_adver_int) & 0x0fff;
	}

	/* keepalived demultiplexes on the VRID before any other check */
	if (a->vrid != p->vrid)
		return KHA_VRRP_DROP_VRID;
	if (p->primary && a->saddr == p->primary)
		return KHA_VRRP_DROP_OWN;

	mlen = KHA_VRRP_HDR_LEN + 4 * (size_t)a->naddr +
	       (a->version == 2 ? KHA_VRRP_AUTH_LEN : 0);
	expect = ihl + mlen;
	if (len != expect)
		return KHA_VRRP_DROP_LENGTH;
	if (!p->unicast && a->ttl != KHA_VRRP_TTL)
		return KHA_VRRP_DROP_TTL;
	if (a->version != p->version)
		return KHA_VRRP_DROP_VERSION;
	if (a->version == 2) {
		if (a->auth_type != p->auth_type)
			return KHA_VRRP_DROP_AUTH_TYPE;
		memcpy(a->auth, m + mlen - KHA_VRRP_AUTH_LEN, KHA_VRRP_AUTH_LEN);
		if (p->auth_type == KHA_VRRP_AUTH_PASS &&
		    memcmp(a->auth, p->auth_pass, KHA_VRRP_AUTH_LEN))
			return KHA_VRRP_DROP_AUTH;
		/* keepalived: "to prevent concurrent VRID running" */
		if (a->adver_int_cs != p->advert_int_cs)
			return KHA_VRRP_DROP_INTERVAL;
	}
	if (a->type != KHA_VRRP_TYPE_ADVERT)
		return KHA_VRRP_DROP_TYPE;
	if (a->naddr != p->nr_addrs)
		return KHA_VRRP_DROP_ADDR_LIST;
	if (((size_t)pkt[2] << 8 | pkt[3]) != len)
		return KHA_VRRP_DROP_LENGTH;

	/* A valid checksum sums to zero, i.e. recomputes to 0 over itself. */
	if (a->version == 3) {
		uint32_t ps = pseudo_sum(a->saddr, a->daddr, mlen);
		uint32_t group = htonl(KHA_VRRP_MCAST_GROUP);

		if (csum_fold(csum_add(m, mlen, ps))) {
			ps = pseudo_sum(a->saddr, group, mlen);
			if (!p->unicast || a->daddr == group ||
			    csum_fold(csum_add(m, mlen, ps)))
				return KHA_VRRP_DROP_CHECKSUM;
			a->old_checksum = true;
		}
	} else if (csum_fold(csum_add(m, mlen, 0))) {
		return KHA_VRRP_DROP_CHECKSUM;
	}

	mcast = (ntohl(a->daddr) >> 28) == 0xe;
	if (mcast == p->unicast)
		return KHA_VRRP_DROP_DEST;
	if (a->version == 3 && !a->adver_int_cs)
		return KHA_VRRP_DROP_ZERO_INTERVAL;
	memcpy(a->addrs, m + KHA_VRRP_HDR_LEN,
	       4 * (size_t)(a->naddr < KHA_VRRP_MAX_ADDRS ? a->naddr :
							    KHA_VRRP_MAX_ADDRS));
	for (int i = 0; i < p->nr_addrs; i++)
		if (!addr_in(p->addrs[i], a->addrs, a->naddr))
			return KHA_VRRP_DROP_ADDR_LIST;
	return KHA_VRRP_OK;
}

/* ---- configuration ---- */

int kha_vrrp_params_from_conf(struct kha_vrrp_params *p,
			      const struct kha_config *cfg, uint32_t primary)
{
	const struct kha_vrrp_conf *v = &cfg->vrrp;
	uint32_t cs = v->advert_int_cs ? v->advert_int_cs : 100;

	memset(p, 0, sizeof(*p));
	if (v->version != 2 && v->version != 3)
		return -EINVAL;
	if (v->vrid < 1 || v->vrid > 255 || v->priority < 1 ||
	    v->priority > 255)
		return -EINVAL;
	p->version = v->version;
	p->vrid = (uint8_t)v->vrid;
	p->priority = (uint8_t)v->priority;
	if (p->version == 2) {
		/* whole seconds on the wire; round up, at least one */
		cs = (cs + 99) / 100 * 100;
		if (cs > 255 * 100)
			cs = 255 * 100;
	} else if (cs > 0x0fff) {
		cs = 0x0fff;
	}
	p->advert_int_cs = (uint16_t)cs;
	p->initial_state = v->initial_state;
	p->preempt = v->preempt;
	p->preempt_delay_ms = v->preempt_delay_ms;
	p->unicast = v->nr_peers > 0;
	if (p->version == 2 && v->auth_pass[0]) {
		p->auth_type = KHA_VRRP_AUTH_PASS;
		/* zero padded to 8 bytes, as keepalived puts it on the wire */
		memcpy(p->auth_pass, v->auth_pass,
		       strnlen(v->auth_pass, KHA_VRRP_AUTH_LEN));
	}
	p->track_weight = v->track_weight < 0 ? -v->track_weight :
						v->track_weight;
	p->primary = v->src_addr.s_addr ? v->src_addr.s_addr : primary;
	for (int i = 0; i < cfg->nr_vips && p->nr_addrs < KHA_VRRP_MAX_ADDRS;
	     i++) {
		uint32_t a = cfg->vips[i].addr.sin_addr.s_addr;

		if (!addr_in(a, p->addrs, p->nr_addrs))
			p->addrs[p->nr_addrs++] = a;
	}
	return 0;
}

/* ---- state machine ---- */

static uint16_t master_int(const struct kha_vrrp_sm *sm)
{
	/* v2 has one interval for the group; v3 backups use the master's */
	if (sm->p.version == 3 && sm->master_adver_int_cs)
		return sm->master_adver_int_cs;
	return sm->p.advert_int_cs;
}

static uint64_t down_interval(const struct kha_vrrp_sm *sm)
{
	return kha_vrrp_master_down_ms(sm->p.version, sm->eff_prio,
				       master_int(sm));
}

static uint64_t advert_ms(const struct kha_vrrp_sm *sm)
{
	return (uint64_t)sm->p.advert_int_cs * 10;
}

static bool faulty(const struct kha_vrrp_sm *sm)
{
	return sm->fault_backend || sm->fault_dataplane || sm->fault_link;
}

void kha_vrrp_sm_init(struct kha_vrrp_sm *sm, const struct kha_vrrp_params *p)
{
	memset(sm, 0, sizeof(*sm));
	sm->p = *p;
	sm->state = KHA_VRRP_INIT;
	sm->eff_prio = p->priority;
}

static unsigned set_state(struct kha_vrrp_sm *sm, uint64_t now,
			  enum kha_vrrp_state st, enum kha_vrrp_reason why)
{
	sm->last_change_ms = now;
	sm->last_reason = why;
	if (sm->state == st)
		return 0;
	sm->state = st;
	return KHA_VRRP_ACT_STATE;
}

static unsigned become_master(struct kha_vrrp_sm *sm, uint64_t now,
			      enum kha_vrrp_reason why)
{
	unsigned act = set_state(sm, now, KHA_VRRP_MASTER, why);

	sm->master_down_at = 0;
	sm->preempt_at = 0;
	sm->prio0_seen = false;
	sm->adver_at = now + advert_ms(sm);
	sm->master_addr = sm->p.primary;
	sm->master_prio = sm->eff_prio;
	sm->master_adver_int_cs = 0;
	sm->tx_adverts++;
	sm->became_master++;
	return act | KHA_VRRP_ACT_SEND_ADVERT | KHA_VRRP_ACT_ADD_VIPS |
	       KHA_VRRP_ACT_GARP;
}

static unsigned become_backup(struct kha_vrrp_sm *sm, uint64_t now,
			      enum kha_vrrp_reason why)
{
	bool was_master = sm->state == KHA_VRRP_MASTER;
	unsigned act = set_state(sm, now, KHA_VRRP_BACKUP, why);

	sm->adver_at = 0;
	sm->master_down_at = now + down_interval(sm);
	return act | (was_master ? KHA_VRRP_ACT_DEL_VIPS : 0);
}

unsigned kha_vrrp_sm_start(struct kha_vrrp_sm *sm, uint64_t now)
{
	unsigned act;

	if (sm->state != KHA_VRRP_INIT)
		return 0;
	sm->eff_prio = kha_vrrp_eff_prio(sm->p.priority, sm->p.track_weight,
					 faulty(sm));
	if (sm->p.priority == 255)
		return become_master(sm, now, KHA_VRRP_R_STARTUP);
	act = become_backup(sm, now, KHA_VRRP_R_STARTUP);
	/*
	 * `state MASTER` without owning the address: as keepalived, start as
	 * a backup that only waits out its skew, so an existing master's
	 * advert still wins but an empty segment gets a master at once.
	 */
	if (sm->p.initial_state == KHA_VRRP_MASTER)
		sm->master_down_at = now + kha_vrrp_skew_ms(sm->p.version,
							    sm->eff_prio,
							    sm->p.advert_int_cs);
	if (sm->p.preempt && sm->p.preempt_delay_ms)
		sm->preempt_at = now + sm->p.preempt_delay_ms;
	return act;
}

unsigned kha_vrrp_sm_adopt(struct kha_vrrp_sm *sm, uint64_t now)
{
	if (sm->state != KHA_VRRP_INIT)
		return 0;
	sm->eff_prio = kha_vrrp_eff_prio(sm->p.priority, sm->p.track_weight,
					 faulty(sm));
	return become_master(sm, now, KHA_VRRP_R_ADOPT);
}

uint64_t kha_vrrp_sm_next(const struct kha_vrrp_sm *sm)
{
	if (sm->state == KHA_VRRP_MASTER)
		return sm->adver_at;
	if (sm->state == KHA_VRRP_BACKUP)
		return sm->master_down_at;
	return 0;
}

unsigned kha_vrrp_sm_timer(struct kha_vrrp_sm *sm, uint64_t now)
{
	if (sm->state == KHA_VRRP_MASTER && sm->adver_at &&
	    now >= sm->adver_at) {
		sm->adver_at = now + advert_ms(sm);
		sm->tx_adverts++;
		return KHA_VRRP_ACT_SEND_ADVERT;
	}
	if (sm->state == KHA_VRRP_BACKUP && sm->master_down_at &&
	    now >= sm->master_down_at) {
		enum kha_vrrp_reason why = KHA_VRRP_R_MASTER_DOWN;

		if (sm->prio0_seen)
			why = KHA_VRRP_R_PRIO0;
		else if (sm->master_addr && sm->master_prio < sm->eff_prio)
			why = KHA_VRRP_R_PREEMPT;
		return become_master(sm, now, why);
	}
	return 0;
}

/* Does the advert's sender win over us (RFC 5798 6.4.3, keepalived)? */
static bool sender_wins(const struct kha_vrrp_sm *sm,
			const struct kha_vrrp_advert *a)
{
	if (a->priority != sm->eff_prio)
		return a->priority > sm->eff_prio;
	return ntohl(a->saddr) > ntohl(sm->p.primary);
}

static unsigned backup_rx(struct kha_vrrp_sm *sm, uint64_t now,
			  const struct kha_vrrp_advert *a)
{
	if (a->priority == 0) {
		/* The master resigned: take over after the skew only. */
		sm->master_down_at = now + kha_vrrp_skew_ms(sm->p.version,
							    sm->eff_prio,
							    master_int(sm));
		sm->master_addr = 0;
		sm->master_prio = 0;
		sm->prio0_seen = true;
		return 0;
	}
	if (sm->p.preempt && a->priority < sm->eff_prio) {
		if (!sm->p.preempt_delay_ms)
			return 0; /* let Master_Down_Timer run out */
		if (!sm->preempt_at)
			sm->preempt_at = now + sm->p.preempt_delay_ms;
		if (now >= sm->preempt_at)
			return 0;
		/* still inside preempt_delay: accept it as master */
	} else if (a->priority >= sm->eff_prio) {
		sm->preempt_at = 0;
	}
	if (sm->p.version == 3)
		sm->master_adver_int_cs = a->adver_int_cs;
	sm->master_addr = a->saddr;
	sm->master_prio = a->priority;
	sm->prio0_seen = false;
	sm->master_down_at = now + down_interval(sm);
	return 0;
}

static unsigned master_rx(struct kha_vrrp_sm *sm, uint64_t now,
			  const struct kha_vrrp_advert *a)
{
	if (a->priority == 0) {
		/* Someone resigned: assert ourselves at once. */
		sm->adver_at = now + advert_ms(sm);
		sm->tx_adverts++;
		return KHA_VRRP_ACT_SEND_ADVERT;
	}
	if (sender_wins(sm, a)) {
		enum kha_vrrp_reason why = a->priority > sm->eff_prio ?
						   KHA_VRRP_R_HIGHER_PRIO :
						   KHA_VRRP_R_HIGHER_ADDR;

		if (sm->p.version == 3)
			sm->master_adver_int_cs = a->adver_int_cs;
		sm->master_addr = a->saddr;
		sm->master_prio = a->priority;
		/*
		 * Two masters (a partition healed): the winner may never hear
		 * us if its advert came first, and the segment's ARP caches
		 * may still point at us. One parting advert at our lower
		 * priority makes it answer with its own advert and GARP.
		 */
		sm->tx_adverts++;
		return become_backup(sm, now, why) | KHA_VRRP_ACT_SEND_ADVERT;
	}
	/*
	 * A lower master exists (split brain, or it just returned): answer
	 * now rather than at our next tick so it steps down within one
	 * interval, and re-announce our MAC for the VIPs.
	 */
	sm->adver_at = now + advert_ms(sm);
	sm->tx_adverts++;
	return KHA_VRRP_ACT_SEND_ADVERT | KHA_VRRP_ACT_GARP;
}

unsigned kha_vrrp_sm_advert(struct kha_vrrp_sm *sm, uint64_t now,
			    const struct kha_vrrp_advert *a)
{
	if (sm->state == KHA_VRRP_BACKUP)
		return backup_rx(sm, now, a);
	if (sm->state == KHA_VRRP_MASTER)
		return master_rx(sm, now, a);
	return 0;
}

unsigned kha_vrrp_sm_rx(struct kha_vrrp_sm *sm, uint64_t now,
			const uint8_t *pkt, size_t len)
{
	struct kha_vrrp_advert a;
	enum kha_vrrp_drop d = kha_vrrp_parse(&sm->p, pkt, len, &a);

	if (d != KHA_VRRP_OK) {
		sm->drops[d]++;
		return 0;
	}
	sm->rx_adverts++;
	if (!a.priority)
		sm->rx_prio0++;
	return kha_vrrp_sm_advert(sm, now, &a);
}

unsigned kha_vrrp_sm_set_faults(struct kha_vrrp_sm *sm, uint64_t now,
				bool backend, bool dataplane, bool link)
{
	uint8_t old = sm->eff_prio;

	sm->fault_backend = backend;
	sm->fault_dataplane = dataplane;
	sm->fault_link = link;
	sm->eff_prio = kha_vrrp_eff_prio(sm->p.priority, sm->p.track_weight,
					 faulty(sm));
	if (sm->eff_prio == old)
		return 0;
	if (sm->state == KHA_VRRP_MASTER) {
		/* Tell the group now: a better backup can start preempting. */
		sm->master_prio = sm->eff_prio;
		sm->adver_at = now + advert_ms(sm);
		sm->tx_adverts++;
		return KHA_VRRP_ACT_SEND_ADVERT;
	}
	return 0;
}

unsigned kha_vrrp_sm_shutdown(struct kha_vrrp_sm *sm, uint64_t now)
{
	bool was_master = sm->state == KHA_VRRP_MASTER;
	unsigned act = set_state(sm, now, KHA_VRRP_INIT, KHA_VRRP_R_SHUTDOWN);

	sm->adver_at = 0;
	sm->master_down_at = 0;
	sm->preempt_at = 0;
	if (!was_master)
		return act;
	sm->tx_prio0++;
	sm->master_addr = 0;
	return act | KHA_VRRP_ACT_SEND_PRIO0 | KHA_VRRP_ACT_DEL_VIPS;
}

unsigned kha_vrrp_sm_update(struct kha_vrrp_sm *sm, uint64_t now,
			    const struct kha_vrrp_params *p)
{
	bool addrs_changed = p->nr_addrs != sm->p.nr_addrs ||
			     memcmp(p->addrs, sm->p.addrs,
				    sizeof(p->addrs[0]) * p->nr_addrs);
	uint8_t old = sm->eff_prio;
	unsigned act = 0;

	sm->p = *p;
	sm->eff_prio = kha_vrrp_eff_prio(p->priority, p->track_weight,
					 faulty(sm));
	if (sm->state == KHA_VRRP_MASTER) {
		if (addrs_changed)
			act |= KHA_VRRP_ACT_ADD_VIPS | KHA_VRRP_ACT_GARP;
		if (old != sm->eff_prio || addrs_changed) {
			sm->master_prio = sm->eff_prio;
			sm->adver_at = now + advert_ms(sm);
			sm->tx_adverts++;
			act |= KHA_VRRP_ACT_SEND_ADVERT;
		}
	}
	return act;
}

/* ---- names ---- */

const char *kha_vrrp_state_name(enum kha_vrrp_state st)
{
	switch (st) {
	case KHA_VRRP_INIT:
		return "INIT";
	case KHA_VRRP_BACKUP:
		return "BACKUP";
	case KHA_VRRP_MASTER:
		return "MASTER";
	}
	return "?";
}

static const char *const drop_names[KHA_VRRP_DROP_MAX] = {
	[KHA_VRRP_OK] = "ok",
	[KHA_VRRP_DROP_IP] = "bad_ip_header",
	[KHA_VRRP_DROP_TTL] = "bad_ttl",
	[KHA_VRRP_DROP_LENGTH] = "bad_length",
	[KHA_VRRP_DROP_VERSION] = "bad_version",
	[KHA_VRRP_DROP_TYPE] = "bad_type",
	[KHA_VRRP_DROP_CHECKSUM] = "bad_checksum",
	[KHA_VRRP_DROP_VRID] = "other_vrid",
	[KHA_VRRP_DROP_AUTH_TYPE] = "auth_type_mismatch",
	[KHA_VRRP_DROP_AUTH] = "auth_failure",
	[KHA_VRRP_DROP_INTERVAL] = "interval_mismatch",
	[KHA_VRRP_DROP_ADDR_LIST] = "address_list_mismatch",
	[KHA_VRRP_DROP_DEST] = "bad_destination",
	[KHA_VRRP_DROP_ZERO_INTERVAL] = "zero_interval",
	[KHA_VRRP_DROP_OWN] = "own_advert",
};

const char *kha_vrrp_drop_name(enum kha_vrrp_drop d)
{
	return (unsigned)d < KHA_VRRP_DROP_MAX ? drop_names[d] : "?";
}

static const char *const reason_names[KHA_VRRP_R_MAX] = {
	[KHA_VRRP_R_NONE] = "none",
	[KHA_VRRP_R_STARTUP] = "startup",
	[KHA_VRRP_R_MASTER_DOWN] = "master down timer expired",
	[KHA_VRRP_R_PRIO0] = "master sent priority 0",
	[KHA_VRRP_R_HIGHER_PRIO] = "advert with higher priority",
	[KHA_VRRP_R_HIGHER_ADDR] = "advert with equal priority, higher address",
	[KHA_VRRP_R_PREEMPT] = "preempted a lower priority master",
	[KHA_VRRP_R_SHUTDOWN] = "shutdown",
	[KHA_VRRP_R_ADOPT] = "adopted the VIPs already on the interface",
};

const char *kha_vrrp_reason_name(enum kha_vrrp_reason r)
{
	return (unsigned)r < KHA_VRRP_R_MAX ? reason_names[r] : "?";
}
