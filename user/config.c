// SPDX-License-Identifier: GPL-2.0
/*
 * The kha-xdp configuration file parser. Pure: it reads a string (or, for
 * kha_config_load, one file) and fills struct kha_config; it never looks at
 * the system (interfaces, files named inside the config), so `kha-xdp check`
 * and the unit tests run it anywhere. Syntax and every key: docs/config.md.
 *
 * Every error stops the parse with exactly one `file:line: message`, where
 * the message names the key and the offending value.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "config.h"
#include "maglev.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAX_LINE 4096
#define MAX_WORDS 64
#define MAX_FILE (1 << 20)

/* check ranges (ms / counts); haproxy accepts more, nobody needs more */
#define INTER_MIN 10
#define INTER_MAX 3600000
#define TIMEOUT_MIN 1
#define TIMEOUT_MAX 3600000
#define FALL_RISE_MAX 1000
#define WEIGHT_MAX 256

/* which check settings were given; a backend inherits the others */
enum {
	CK_TYPE = 1 << 0,
	CK_INTER = 1 << 1,
	CK_FASTINTER = 1 << 2,
	CK_DOWNINTER = 1 << 3,
	CK_TIMEOUT = 1 << 4,
	CK_FALL = 1 << 5,
	CK_RISE = 1 << 6,
	CK_PORT = 1 << 7,
	CK_PATH = 1 << 8,
	CK_CA = 1 << 9,
	CK_SNI = 1 << 10,
	CK_WEIGHT = 1 << 11, /* backend only */
};

enum block { B_TOP, B_VIP, B_VRRP, B_STATUS };

struct parser {
	const char *name;
	char *err;
	size_t errlen;
	int line;
	struct kha_config *cfg;

	enum block block;
	int block_line;
	char block_name[96]; /* "vip 1.2.3.4:8443", "vrrp", "status" */
	struct kha_vip_conf *vip;
	uint32_t vip_mask;
	uint32_t be_mask[KHA_MAX_BACKENDS];

	/* line where each key was first seen in the current block (dups) */
	int seen[64];
	int vrrp_line, status_line;
	int snat_line, local_line;

	/* VRRP values that depend on `version`, checked at `}` */
	char advert[32];
	int advert_line, auth_line, preempt_line, nopreempt_line;
	int src_line;
	uint32_t advert_ms;
};

static int fail(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err && p->errlen)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->name, line, msg);
	return -EINVAL;
}

/* ---- values -------------------------------------------------------- */

static int parse_ll(const char *s, long long *v)
{
	const char *q = s;
	long long x = 0;
	int neg = 0;

	if (*q == '-') {
		neg = 1;
		q++;
	}
	if (!*q)
		return -1;
	for (; *q; q++) {
		if (!isdigit((unsigned char)*q))
			return -1;
		if (x > (1LL << 40))
			return -1; /* far beyond any range we accept */
		x = x * 10 + (*q - '0');
	}
	*v = neg ? -x : x;
	return 0;
}

/* A decimal integer in [lo, hi], or an error naming `key val`. */
static int get_int(struct parser *p, const char *ctx, const char *key,
		   const char *val, long long lo, long long hi, long long *v)
{
	if (parse_ll(val, v))
		return fail(p, p->line, "%s%s %s: not a number", ctx, key, val);
	if (*v < lo || *v > hi)
		return fail(p, p->line, "%s%s %s: out of range %lld-%lld", ctx,
			    key, val, lo, hi);
	return 0;
}

/*
 * A duration: `2000`, `2s`, `100ms`, `0.1`, `1.5s`, `1m`, `1h`. A bare
 * number is in `unit` ms (ms for probe settings as in haproxy, seconds for
 * VRRP settings as in keepalived). Must come to a whole number of ms.
 */
static int parse_time(const char *s, uint32_t unit, uint64_t *ms)
{
	uint64_t ip = 0, fp = 0, div = 1;
	const char *q = s;
	int digits = 0;

	for (; isdigit((unsigned char)*q); q++, digits++) {
		if (ip > 100000000ULL)
			return -1;
		ip = ip * 10 + (*q - '0');
	}
	if (*q == '.') {
		q++;
		for (; isdigit((unsigned char)*q); q++, digits++) {
			if (div >= 1000000000ULL)
				return -1;
			fp = fp * 10 + (*q - '0');
			div *= 10;
		}
	}
	if (!digits)
		return -1;
	if (!*q)
		;
	else if (!strcmp(q, "ms"))
		unit = 1;
	else if (!strcmp(q, "s"))
		unit = 1000;
	else if (!strcmp(q, "m"))
		unit = 60000;
	else if (!strcmp(q, "h"))
		unit = 3600000;
	else
		return -1;
	if ((fp * unit) % div)
		return -2;
	*ms = ip * unit + fp * unit / div;
	return 0;
}

static void fmt_ms(char *buf, size_t len, uint64_t ms)
{
	if (ms && ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static int get_time(struct parser *p, const char *ctx, const char *key,
		    const char *val, uint32_t unit, uint64_t lo, uint64_t hi,
		    uint64_t *ms)
{
	char a[32], b[32];
	int r = parse_time(val, unit, ms);

	if (r == -2)
		return fail(p, p->line,
			    "%s%s %s: not a whole number of milliseconds", ctx,
			    key, val);
	if (r)
		return fail(p, p->line,
			    "%s%s %s: not a duration (e.g. %s, 2s, 100ms)", ctx,
			    key, val, unit == 1 ? "2000" : "3");
	if (*ms < lo || *ms > hi) {
		fmt_ms(a, sizeof(a), lo);
		fmt_ms(b, sizeof(b), hi);
		return fail(p, p->line, "%s%s %s: out of range %s-%s", ctx,
			    key, val, a, b);
	}
	return 0;
}

/* Something a data plane can forward to: not 0/8, loopback, class D/E. */
static int unicast_ok(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return (h >> 24) != 0 && (h >> 24) != 127 && h < 0xe0000000u;
}

static int get_addr(struct parser *p, const char *ctx, const char *key,
		    const char *val, struct in_addr *a)
{
	if (inet_pton(AF_INET, val, a) != 1)
		return fail(p, p->line, "%s%s %s: invalid IPv4 address", ctx,
			    key, val);
	if (!unicast_ok(*a))
		return fail(p, p->line, "%s%s %s: not a unicast address", ctx,
			    key, val);
	return 0;
}

/* `ADDRESS:PORT`; the messages start with `key val: `. */
static int get_addr_port(struct parser *p, const char *key, const char *val,
			 struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(val, ':');
	long long port;

	if (!colon || colon == val || !colon[1])
		return fail(p, p->line, "%s %s: expected ADDRESS:PORT", key,
			    val);
	if ((size_t)(colon - val) >= sizeof(host))
		return fail(p, p->line, "%s %s: invalid IPv4 address", key,
			    val);
	memcpy(host, val, colon - val);
	host[colon - val] = 0;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return fail(p, p->line, "%s %s: invalid IPv4 address '%s'", key,
			    val, host);
	if (parse_ll(colon + 1, &port))
		return fail(p, p->line, "%s %s: invalid port '%s'", key, val,
			    colon + 1);
	if (port < 1 || port > 65535)
		return fail(p, p->line, "%s %s: port %lld out of range 1-65535",
			    key, val, port);
	sin->sin_port = htons(port);
	return 0;
}

static int get_path(struct parser *p, const char *ctx, const char *key,
		    const char *val, char *dst, size_t len)
{
	if (val[0] != '/')
		return fail(p, p->line, "%s%s %s: not an absolute path", ctx,
			    key, val);
	if (strlen(val) >= len)
		return fail(p, p->line, "%s%s %s: longer than %zu characters",
			    ctx, key, val, len - 1);
	strcpy(dst, val);
	return 0;
}

static int get_str(struct parser *p, const char *ctx, const char *key,
		   const char *val, char *dst, size_t len)
{
	if (strlen(val) >= len)
		return fail(p, p->line, "%s%s %s: longer than %zu characters",
			    ctx, key, val, len - 1);
	strcpy(dst, val);
	return 0;
}

/* The kernel's dev_valid_name(). */
static int ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s) ||
		    !isprint((unsigned char)*s))
			return 0;
	return 1;
}

static const char *addr_str(struct in_addr a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static const char *sin_str(const struct sockaddr_in *s, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];

	snprintf(buf, len, "%s:%u", addr_str(s->sin_addr, a),
		 ntohs(s->sin_port));
	return buf;
}

/* ---- argument count -------------------------------------------------- */

/* `key` takes exactly n values (argv[1..n]). */
static int nargs(struct parser *p, const char *ctx, char **argv, int argc,
		 int n)
{
	if (argc - 1 < n)
		return fail(p, p->line, "%s%s: missing argument", ctx, argv[0]);
	if (argc - 1 > n)
		return fail(p, p->line, "%s%s: unexpected argument '%s'", ctx,
			    argv[0], argv[n + 1]);
	return 0;
}

static int once(struct parser *p, const char *ctx, int idx, const char *key)
{
	if (p->seen[idx])
		return fail(p, p->line, "%s%s: given twice (first at line %d)",
			    ctx, key, p->seen[idx]);
	p->seen[idx] = p->line;
	return 0;
}

/* A block key's line: exactly n arguments, and once unless repeatable. */
static int key_line(struct parser *p, int idx, char **argv, int argc, int n,
		    bool repeatable)
{
	int r = nargs(p, "", argv, argc, n);

	if (!r && !repeatable)
		r = once(p, "", idx, argv[0]);
	return r;
}

/* ---- probe settings (vip block and backend lines) --------------------- */

static const struct {
	const char *key;
	uint32_t bit;
} check_keys[] = {
	{ "check", CK_TYPE },	      { "inter", CK_INTER },
	{ "fastinter", CK_FASTINTER }, { "downinter", CK_DOWNINTER },
	{ "timeout", CK_TIMEOUT },     { "fall", CK_FALL },
	{ "rise", CK_RISE },	      { "check_port", CK_PORT },
	{ "check_path", CK_PATH },     { "ca_file", CK_CA },
	{ "check_sni", CK_SNI },
};

static int is_check_key(const char *key)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(check_keys); i++)
		if (!strcmp(key, check_keys[i].key))
			return 1;
	return 0;
}

static void check_defaults(struct kha_check_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->type = KHA_CHECK_TCP;
	c->inter = 2000;
	c->timeout = 0; /* resolved to inter when the block closes */
	c->fall = 3;
	c->rise = 2;
	strcpy(c->path, "/readyz");
}

/*
 * One probe setting `key val` into c; *mask gets its bit. Returns 1 when
 * `key` is not a probe setting, 0 when set, -EINVAL on error.
 */
static int check_key(struct parser *p, const char *ctx, const char *key,
		     const char *val, struct kha_check_conf *c,
		     uint32_t *mask)
{
	uint64_t ms;
	long long v;
	uint32_t bit = 0;
	unsigned int i;
	int r = 0;

	for (i = 0; i < ARRAY_SIZE(check_keys); i++)
		if (!strcmp(key, check_keys[i].key))
			bit = check_keys[i].bit;
	if (!bit)
		return 1;
	if (*mask & bit)
		return fail(p, p->line, "%s%s: given twice", ctx, key);
	*mask |= bit;

	switch (bit) {
	case CK_TYPE:
		if (!strcmp(val, "tcp"))
			c->type = KHA_CHECK_TCP;
		else if (!strcmp(val, "https"))
			c->type = KHA_CHECK_HTTPS;
		else if (!strcmp(val, "http"))
			c->type = KHA_CHECK_HTTP;
		else if (!strcmp(val, "none"))
			c->type = KHA_CHECK_NONE;
		else
			return fail(p, p->line,
				    "%s%s %s: expected tcp, https, http or none",
				    ctx, key, val);
		break;
	case CK_INTER:
	case CK_FASTINTER:
	case CK_DOWNINTER:
		r = get_time(p, ctx, key, val, 1, INTER_MIN, INTER_MAX, &ms);
		if (r)
			return r;
		if (bit == CK_INTER)
			c->inter = ms;
		else if (bit == CK_FASTINTER)
			c->fastinter = ms;
		else
			c->downinter = ms;
		break;
	case CK_TIMEOUT:
		r = get_time(p, ctx, key, val, 1, TIMEOUT_MIN, TIMEOUT_MAX, &ms);
		if (r)
			return r;
		c->timeout = ms;
		break;
	case CK_FALL:
	case CK_RISE:
		r = get_int(p, ctx, key, val, 1, FALL_RISE_MAX, &v);
		if (r)
			return r;
		if (bit == CK_FALL)
			c->fall = v;
		else
			c->rise = v;
		break;
	case CK_PORT:
		r = get_int(p, ctx, key, val, 1, 65535, &v);
		if (r)
			return r;
		c->port = v;
		break;
	case CK_PATH:
		if (val[0] != '/')
			return fail(p, p->line, "%s%s %s: must start with '/'",
				    ctx, key, val);
		for (i = 0; val[i]; i++)
			if (!isgraph((unsigned char)val[i]))
				return fail(p, p->line,
					    "%s%s %s: space or control character in path",
					    ctx, key, val);
		return get_str(p, ctx, key, val, c->path, sizeof(c->path));
	case CK_CA:
		return get_path(p, ctx, key, val, c->ca_file,
				sizeof(c->ca_file));
	case CK_SNI:
		return get_str(p, ctx, key, val, c->sni, sizeof(c->sni));
	}
	return 0;
}

/* ---- top level ------------------------------------------------------ */

enum {
	T_INTERFACE, T_SNAT, T_XDP_MODE, T_RING, T_PIN, T_CTL, T_LOCAL_ADDR,
	T_LOCAL_CLIENTS, T_CGROUP,
};

/* Index of `key` in a block's key table, or -1 when it is not one. */
static int key_index(const char *const *keys, unsigned int n, const char *key)
{
	unsigned int k;

	for (k = 0; k < n; k++)
		if (!strcmp(key, keys[k]))
			return k;
	return -1;
}

static const char *const top_keys[] = {
	[T_INTERFACE] = "interface",	   [T_SNAT] = "snat_ports",
	[T_XDP_MODE] = "xdp_mode",	   [T_RING] = "ring_size",
	[T_PIN] = "pin_root",		   [T_CTL] = "control_socket",
	[T_LOCAL_ADDR] = "local_address", [T_LOCAL_CLIENTS] = "local_clients",
	[T_CGROUP] = "cgroup",
};

static int get_bool(struct parser *p, const char *ctx, const char *key,
		    const char *val, bool *b)
{
	if (!strcmp(val, "yes"))
		*b = true;
	else if (!strcmp(val, "no"))
		*b = false;
	else
		return fail(p, p->line, "%s%s %s: expected yes or no", ctx, key,
			    val);
	return 0;
}

static int top_line(struct parser *p, char **argv, int argc)
{
	struct kha_config *cfg = p->cfg;
	const char *key = argv[0], *val = argv[1];
	int k;
	long long lo, hi;
	int r;

	k = key_index(top_keys, ARRAY_SIZE(top_keys), key);
	if (k < 0)
		return fail(p, p->line, "unknown key '%s'", key);
	r = key_line(p, k, argv, argc, 1, false);
	if (r)
		return r;

	switch (k) {
	case T_INTERFACE:
		if (!ifname_ok(val))
			return fail(p, p->line,
				    "interface %s: invalid interface name", val);
		strcpy(cfg->ifname, val);
		break;
	case T_SNAT: {
		const char *dash = strchr(val, '-');
		char a[16];

		if (!dash || dash == val || (size_t)(dash - val) >= sizeof(a))
			return fail(p, p->line,
				    "snat_ports %s: expected LOW-HIGH", val);
		memcpy(a, val, dash - val);
		a[dash - val] = 0;
		if (parse_ll(a, &lo) || parse_ll(dash + 1, &hi))
			return fail(p, p->line,
				    "snat_ports %s: expected LOW-HIGH", val);
		if (lo < 1 || hi > 65535 || lo > 65535 || hi < 1)
			return fail(p, p->line,
				    "snat_ports %s: port out of range 1-65535",
				    val);
		if (lo > hi)
			return fail(p, p->line, "snat_ports %s: inverted range",
				    val);
		cfg->snat_port_lo = lo;
		cfg->snat_port_hi = hi;
		p->snat_line = p->line;
		break;
	}
	case T_XDP_MODE:
		if (!strcmp(val, "native"))
			cfg->xdp_generic = 0;
		else if (!strcmp(val, "generic"))
			cfg->xdp_generic = 1;
		else
			return fail(p, p->line,
				    "xdp_mode %s: expected native or generic",
				    val);
		break;
	case T_RING:
		if (parse_ll(val, &lo))
			return fail(p, p->line, "ring_size %s: not a number",
				    val);
		if (lo < 0 || lo > UINT32_MAX || !maglev_size_ok((uint32_t)lo))
			return fail(p, p->line,
				    "ring_size %s: not a prime in 3-%d", val,
				    KHA_RING_SIZE_MAX);
		cfg->ring_size = lo;
		break;
	case T_PIN:
		return get_path(p, "", key, val, cfg->pin_root,
				sizeof(cfg->pin_root));
	case T_CTL:
		/* a unix socket path must fit sun_path */
		return get_path(p, "", key, val, cfg->ctl_socket,
				sizeof(((struct sockaddr_un *)0)->sun_path));
	case T_LOCAL_ADDR:
		if (inet_pton(AF_INET, val, &cfg->local_addr) != 1)
			return fail(p, p->line,
				    "local_address %s: invalid IPv4 address",
				    val);
		p->local_line = p->line;
		break;
	case T_LOCAL_CLIENTS:
		return get_bool(p, "", key, val, &cfg->local_clients);
	case T_CGROUP:
		return get_path(p, "", key, val, cfg->cgroup,
				sizeof(cfg->cgroup));
	}
	return 0;
}

/* ---- vip block ------------------------------------------------------ */

static int open_vip(struct parser *p, char **argv, int argc)
{
	struct kha_config *cfg = p->cfg;
	struct kha_vip_conf *v;
	struct sockaddr_in sin;
	char buf[64];
	int i, r;

	if (argc < 3)
		return fail(p, p->line, "vip: missing argument");
	if (argc > 3)
		return fail(p, p->line, "vip %s: unexpected argument '%s'",
			    argv[1], argv[2]);
	r = get_addr_port(p, "vip", argv[1], &sin);
	if (r)
		return r;
	if (!unicast_ok(sin.sin_addr))
		return fail(p, p->line, "vip %s: not a unicast address",
			    argv[1]);
	for (i = 0; i < cfg->nr_vips; i++)
		if (cfg->vips[i].addr.sin_addr.s_addr == sin.sin_addr.s_addr &&
		    cfg->vips[i].addr.sin_port == sin.sin_port)
			return fail(p, p->line,
				    "vip %s: duplicate vip (first at line %d)",
				    sin_str(&sin, buf, sizeof(buf)),
				    cfg->vips[i].line);
	if (cfg->nr_vips >= KHA_MAX_VIPS)
		return fail(p, p->line, "vip %s: more than %d vips", argv[1],
			    KHA_MAX_VIPS);
	v = &cfg->vips[cfg->nr_vips++];
	memset(v, 0, sizeof(*v));
	v->addr = sin;
	v->line = p->line;
	check_defaults(&v->check);
	p->vip = v;
	p->vip_mask = 0;
	snprintf(p->block_name, sizeof(p->block_name), "vip %s",
		 sin_str(&sin, buf, sizeof(buf)));
	return 0;
}

static int backend_line(struct parser *p, char **argv, int argc)
{
	struct kha_vip_conf *v = p->vip;
	struct kha_backend_conf *be;
	struct sockaddr_in sin;
	char ctx[128], buf[64];
	uint32_t mask = 0;
	long long w;
	int i, r;

	if (argc < 2)
		return fail(p, p->line, "backend: missing argument");
	r = get_addr_port(p, "backend", argv[1], &sin);
	if (r)
		return r;
	sin_str(&sin, buf, sizeof(buf));
	snprintf(ctx, sizeof(ctx), "backend %s: ", buf);
	if (!unicast_ok(sin.sin_addr))
		return fail(p, p->line, "backend %s: not a unicast address",
			    buf);
	if (sin.sin_addr.s_addr == v->addr.sin_addr.s_addr &&
	    sin.sin_port == v->addr.sin_port)
		return fail(p, p->line, "backend %s: is the vip itself", buf);
	for (i = 0; i < v->nr_backends; i++)
		if (v->backends[i].addr.sin_addr.s_addr ==
			    sin.sin_addr.s_addr &&
		    v->backends[i].addr.sin_port == sin.sin_port)
			return fail(p, p->line, "backend %s: duplicate backend",
				    buf);
	if (kha_config_nr_backends(p->cfg) >= KHA_MAX_BACKENDS)
		return fail(p, p->line, "backend %s: more than %d backends",
			    buf, KHA_MAX_BACKENDS);

	be = &v->backends[v->nr_backends];
	memset(be, 0, sizeof(*be));
	be->addr = sin;
	be->weight = 1;
	be->line = p->line;

	/* the rest: `key value` pairs overriding the vip's settings */
	for (i = 2; i < argc; i += 2) {
		if (i + 1 >= argc)
			return fail(p, p->line, "%s%s: missing argument", ctx,
				    argv[i]);
		if (!strcmp(argv[i], "weight")) {
			if (mask & CK_WEIGHT)
				return fail(p, p->line, "%sweight: given twice",
					    ctx);
			mask |= CK_WEIGHT;
			r = get_int(p, ctx, "weight", argv[i + 1], 0,
				    WEIGHT_MAX, &w);
			if (r)
				return r;
			be->weight = w;
			continue;
		}
		r = check_key(p, ctx, argv[i], argv[i + 1], &be->check, &mask);
		if (r < 0)
			return r;
		if (r)
			return fail(p, p->line, "%sunknown option '%s'", ctx,
				    argv[i]);
	}
	p->be_mask[v->nr_backends++] = mask;
	return 0;
}

static void merge_check(struct kha_check_conf *dst,
			const struct kha_check_conf *src, uint32_t mask)
{
	if (mask & CK_TYPE)
		dst->type = src->type;
	if (mask & CK_INTER)
		dst->inter = src->inter;
	if (mask & CK_FASTINTER)
		dst->fastinter = src->fastinter;
	if (mask & CK_DOWNINTER)
		dst->downinter = src->downinter;
	if (mask & CK_TIMEOUT)
		dst->timeout = src->timeout;
	if (mask & CK_FALL)
		dst->fall = src->fall;
	if (mask & CK_RISE)
		dst->rise = src->rise;
	if (mask & CK_PORT)
		dst->port = src->port;
	if (mask & CK_PATH)
		strcpy(dst->path, src->path);
	if (mask & CK_CA)
		strcpy(dst->ca_file, src->ca_file);
	if (mask & CK_SNI)
		strcpy(dst->sni, src->sni);
}

/* haproxy: the check timeout defaults to inter and never exceeds it */
static void resolve_timeout(struct kha_check_conf *c)
{
	if (!c->timeout || c->timeout > c->inter)
		c->timeout = c->inter;
}

static int close_vip(struct parser *p)
{
	struct kha_vip_conf *v = p->vip;
	struct kha_check_conf vip_check = v->check;
	int i;

	if (!v->nr_backends)
		return fail(p, v->line, "%s: no backend", p->block_name);
	for (i = 0; i < v->nr_backends; i++) {
		struct kha_backend_conf *be = &v->backends[i];
		struct kha_check_conf own = be->check;
		uint32_t m = p->be_mask[i];

		be->check = vip_check;
		merge_check(&be->check, &own, m);
		/* an unset timeout (still 0) follows the backend's own inter */
		resolve_timeout(&be->check);
	}
	resolve_timeout(&v->check);
	p->vip = NULL;
	return 0;
}

static int vip_line(struct parser *p, char **argv, int argc)
{
	char ctx[128];
	int r;

	if (!strcmp(argv[0], "backend"))
		return backend_line(p, argv, argc);
	snprintf(ctx, sizeof(ctx), "%s: ", p->block_name);
	if (argc != 2) {
		/* unknown keys first: a typo is the likelier mistake */
		if (!is_check_key(argv[0]))
			return fail(p, p->line, "unknown key '%s' in %s",
				    argv[0], p->block_name);
		return nargs(p, "", argv, argc, 1);
	}
	r = check_key(p, "", argv[0], argv[1], &p->vip->check, &p->vip_mask);
	if (r == 1)
		return fail(p, p->line, "unknown key '%s' in %s", argv[0],
			    p->block_name);
	return r;
}

/* ---- vrrp block ------------------------------------------------------ */

enum {
	R_VERSION, R_VRID, R_PRIO, R_ADVERT, R_STATE, R_NOPREEMPT, R_PREEMPT,
	R_PREEMPT_DELAY, R_SRC, R_PEER, R_AUTH, R_TRACK, R_GARP_DELAY,
	R_GARP_REPEAT, R_GARP_REFRESH, R_GARP_REFRESH_REPEAT, R_NOTIFY,
};

static const char *const vrrp_keys[] = {
	[R_VERSION] = "version",
	[R_VRID] = "virtual_router_id",
	[R_PRIO] = "priority",
	[R_ADVERT] = "advert_int",
	[R_STATE] = "state",
	[R_NOPREEMPT] = "nopreempt",
	[R_PREEMPT] = "preempt",
	[R_PREEMPT_DELAY] = "preempt_delay",
	[R_SRC] = "unicast_src_ip",
	[R_PEER] = "unicast_peer",
	[R_AUTH] = "auth_pass",
	[R_TRACK] = "track_weight",
	[R_GARP_DELAY] = "garp_master_delay",
	[R_GARP_REPEAT] = "garp_master_repeat",
	[R_GARP_REFRESH] = "garp_master_refresh",
	[R_GARP_REFRESH_REPEAT] = "garp_master_refresh_repeat",
	[R_NOTIFY] = "notify",
};

static int vrrp_line(struct parser *p, char **argv, int argc)
{
	struct kha_vrrp_conf *vr = &p->cfg->vrrp;
	const char *key = argv[0], *val = argv[1];
	int k;
	uint64_t ms;
	long long v;
	struct in_addr a;
	int i, r;

	k = key_index(vrrp_keys, ARRAY_SIZE(vrrp_keys), key);
	if (k < 0)
		return fail(p, p->line, "unknown key '%s' in vrrp", key);
	r = key_line(p, k, argv, argc,
		     k == R_NOPREEMPT || k == R_PREEMPT ? 0 : 1, k == R_PEER);
	if (r)
		return r;

	switch (k) {
	case R_VERSION:
		r = get_int(p, "", key, val, 2, 3, &v);
		vr->version = v;
		break;
	case R_VRID:
		r = get_int(p, "", key, val, 1, 255, &v);
		vr->vrid = v;
		break;
	case R_PRIO:
		r = get_int(p, "", key, val, 1, 255, &v);
		vr->priority = v;
		break;
	case R_ADVERT:
		/* validated against the version when the block closes */
		r = get_time(p, "", key, val, 1000, 0, 3600000, &ms);
		if (r)
			return r;
		snprintf(p->advert, sizeof(p->advert), "%s", val);
		p->advert_line = p->line;
		p->advert_ms = ms;
		break;
	case R_STATE:
		if (!strcasecmp(val, "MASTER"))
			vr->initial_state = KHA_VRRP_MASTER;
		else if (!strcasecmp(val, "BACKUP"))
			vr->initial_state = KHA_VRRP_BACKUP;
		else
			return fail(p, p->line,
				    "state %s: expected MASTER or BACKUP", val);
		break;
	case R_NOPREEMPT:
		vr->preempt = false;
		p->nopreempt_line = p->line;
		break;
	case R_PREEMPT:
		vr->preempt = true;
		p->preempt_line = p->line;
		break;
	case R_PREEMPT_DELAY:
		r = get_time(p, "", key, val, 1000, 0, 1000000, &ms);
		vr->preempt_delay_ms = ms;
		break;
	case R_SRC:
		r = get_addr(p, "", key, val, &a);
		vr->src_addr = a;
		p->src_line = p->line;
		break;
	case R_PEER:
		r = get_addr(p, "", key, val, &a);
		if (r)
			return r;
		for (i = 0; i < vr->nr_peers; i++)
			if (vr->peers[i].s_addr == a.s_addr)
				return fail(p, p->line,
					    "unicast_peer %s: duplicate peer",
					    val);
		if (vr->nr_peers >= KHA_MAX_PEERS)
			return fail(p, p->line,
				    "unicast_peer %s: more than %d peers", val,
				    KHA_MAX_PEERS);
		vr->peers[vr->nr_peers++] = a;
		break;
	case R_AUTH:
		/* the password itself stays out of messages and logs */
		if (!val[0])
			return fail(p, p->line, "auth_pass: empty password");
		if (strlen(val) > 8)
			return fail(p, p->line,
				    "auth_pass: %zu characters, at most 8",
				    strlen(val));
		strcpy(vr->auth_pass, val);
		p->auth_line = p->line;
		break;
	case R_TRACK:
		/* keepalived writes `weight -30`; both spellings lower */
		r = get_int(p, "", key, val, -254, 254, &v);
		vr->track_weight = v < 0 ? -v : v;
		break;
	case R_GARP_DELAY:
		r = get_time(p, "", key, val, 1000, 0, 3600000, &ms);
		vr->garp_delay_ms = ms;
		break;
	case R_GARP_REPEAT:
		r = get_int(p, "", key, val, 1, 255, &v);
		vr->garp_repeat = v;
		break;
	case R_GARP_REFRESH:
		r = get_time(p, "", key, val, 1000, 0, 86400000, &ms);
		vr->garp_refresh_ms = ms;
		break;
	case R_GARP_REFRESH_REPEAT:
		r = get_int(p, "", key, val, 1, 255, &v);
		vr->garp_refresh_repeat = v;
		break;
	case R_NOTIFY:
		r = get_path(p, "", key, val, vr->notify, sizeof(vr->notify));
		break;
	}
	return r;
}

static int close_vrrp(struct parser *p)
{
	struct kha_vrrp_conf *vr = &p->cfg->vrrp;
	uint32_t ms = p->advert_ms;
	int i;

	if (!vr->vrid)
		return fail(p, p->vrrp_line, "vrrp: virtual_router_id missing");
	if (!p->advert_line) {
		vr->advert_int_cs = 100; /* keepalived: 1 s */
	} else if (vr->version == 2) {
		/* the v2 header carries whole seconds */
		if (ms % 1000)
			return fail(p, p->advert_line,
				    "advert_int %s: VRRPv2 needs whole seconds",
				    p->advert);
		if (ms < 1000 || ms > 255000)
			return fail(p, p->advert_line,
				    "advert_int %s: out of range 1-255s for VRRPv2",
				    p->advert);
		vr->advert_int_cs = ms / 10;
	} else {
		/* v3: 12 bits of centiseconds */
		if (ms % 10)
			return fail(p, p->advert_line,
				    "advert_int %s: not a multiple of 10ms",
				    p->advert);
		if (ms < 10 || ms > 40950)
			return fail(p, p->advert_line,
				    "advert_int %s: out of range 0.01-40.95s for VRRPv3",
				    p->advert);
		vr->advert_int_cs = ms / 10;
	}
	if (p->auth_line && vr->version == 3)
		return fail(p, p->auth_line,
			    "auth_pass: VRRPv3 has no authentication");
	if (p->nopreempt_line && p->preempt_line)
		return fail(p, p->nopreempt_line > p->preempt_line ?
				       p->nopreempt_line : p->preempt_line,
			    "nopreempt: contradicts preempt");
	if (p->nopreempt_line && p->seen[R_PREEMPT_DELAY])
		return fail(p, p->seen[R_PREEMPT_DELAY],
			    "preempt_delay: contradicts nopreempt");
	for (i = 0; i < vr->nr_peers; i++)
		if (p->src_line && vr->peers[i].s_addr == vr->src_addr.s_addr) {
			char a[INET_ADDRSTRLEN];

			return fail(p, p->src_line,
				    "unicast_src_ip %s: also a unicast_peer",
				    addr_str(vr->src_addr, a));
		}
	return 0;
}

/* ---- status block ---------------------------------------------------- */

enum { S_LISTEN, S_USER, S_PASSWORD };
static const char *const status_keys[] = {
	[S_LISTEN] = "listen",
	[S_USER] = "user",
	[S_PASSWORD] = "password",
};

static int status_line(struct parser *p, char **argv, int argc)
{
	struct kha_status_conf *st = &p->cfg->status;
	const char *key = argv[0], *val = argv[1];
	int k;
	int r;

	k = key_index(status_keys, ARRAY_SIZE(status_keys), key);
	if (k < 0)
		return fail(p, p->line, "unknown key '%s' in status", key);
	r = key_line(p, k, argv, argc, 1, false);
	if (r)
		return r;
	switch (k) {
	case S_LISTEN:
		r = get_addr_port(p, key, val, &st->listen);
		if (!r && ntohl(st->listen.sin_addr.s_addr) >= 0xe0000000u)
			r = fail(p, p->line, "listen %s: not a local address",
				 val);
		break;
	case S_USER:
		if (!val[0] || strchr(val, ':'))
			return fail(p, p->line,
				    "user %s: empty or contains ':'", val);
		r = get_str(p, "", key, val, st->user, sizeof(st->user));
		break;
	case S_PASSWORD:
		if (!val[0])
			return fail(p, p->line, "password: empty password");
		if (strlen(val) >= sizeof(st->password))
			return fail(p, p->line,
				    "password: longer than %zu characters",
				    sizeof(st->password) - 1);
		strcpy(st->password, val);
		break;
	}
	return r;
}

static int close_status(struct parser *p)
{
	struct kha_status_conf *st = &p->cfg->status;
	char buf[64];

	if (!st->user[0] != !st->password[0])
		return fail(p, p->status_line,
			    "status: user and password go together");
	/* haproxy's stats page, made safe: off localhost only with a login */
	if ((ntohl(st->listen.sin_addr.s_addr) >> 24) != 127 && !st->user[0])
		return fail(p, p->seen[S_LISTEN] ? p->seen[S_LISTEN] :
						     p->status_line,
			    "listen %s: not loopback, needs user and password",
			    sin_str(&st->listen, buf, sizeof(buf)));
	return 0;
}

/* ---- lines and blocks -------------------------------------------------- */

/*
 * Split a line into words in place. `#` outside quotes starts a comment;
 * "double quotes" keep spaces and `#`, with \" and \\ inside.
 */
static int split(struct parser *p, char *s, char **argv, int *argc)
{
	int n = 0;
	char *c;

	/* messages quote words back: keep them printable */
	for (c = s; *c; c++)
		if ((*c > 0 && *c < ' ' && *c != '\t') || *c == 0x7f)
			return fail(p, p->line, "control character 0x%02x",
				    *c);

	for (;;) {
		char *w;

		while (isspace((unsigned char)*s))
			s++;
		if (!*s || *s == '#')
			break;
		if (n == MAX_WORDS)
			return fail(p, p->line, "more than %d words on a line",
				    MAX_WORDS);
		w = s;
		argv[n++] = w;
		if (*s == '"') {
			char *d = w;

			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				*d++ = *s;
			}
			if (*s != '"')
				return fail(p, p->line, "unterminated quote");
			s++;
			if (*s && !isspace((unsigned char)*s) && *s != '#')
				return fail(p, p->line,
					    "text after closing quote");
			*d = 0;
			if (*s == '#') {
				*s = 0;
				break;
			}
		} else {
			while (*s && !isspace((unsigned char)*s) && *s != '#')
				s++;
			if (*s == '#') {
				*s = 0;
				break;
			}
		}
		if (!*s)
			break;
		*s++ = 0;
	}
	*argc = n;
	return 0;
}

static int open_block(struct parser *p, char **argv, int argc)
{
	const char *key = argv[0];
	int r;

	if (p->block != B_TOP)
		return fail(p, p->line, "%s: block inside %s (missing '}'?)",
			    key, p->block_name);
	memset(p->seen, 0, sizeof(p->seen));
	if (!strcmp(key, "vip")) {
		r = open_vip(p, argv, argc);
		if (r)
			return r;
		p->block = B_VIP;
	} else if (!strcmp(key, "vrrp") || !strcmp(key, "status")) {
		int *first = key[1] == 'r' ? &p->vrrp_line : &p->status_line;

		if (argc > 2)
			return fail(p, p->line, "%s: unexpected argument '%s'",
				    key, argv[1]);
		if (*first)
			return fail(p, p->line,
				    "%s: second block (first at line %d)", key,
				    *first);
		*first = p->line;
		snprintf(p->block_name, sizeof(p->block_name), "%s", key);
		if (key[1] == 'r') {
			p->cfg->vrrp.enabled = true;
			p->cfg->vrrp.line = p->line;
			p->block = B_VRRP;
		} else {
			p->cfg->status.enabled = true;
			p->block = B_STATUS;
		}
	} else {
		if (key_index(top_keys, ARRAY_SIZE(top_keys), key) >= 0)
			return fail(p, p->line, "%s: not a block", key);
		return fail(p, p->line, "unknown block '%s'", key);
	}
	p->block_line = p->line;
	return 0;
}

static int close_block(struct parser *p)
{
	int r = 0;

	switch (p->block) {
	case B_TOP:
		return fail(p, p->line, "unexpected '}'");
	case B_VIP:
		r = close_vip(p);
		break;
	case B_VRRP:
		r = close_vrrp(p);
		break;
	case B_STATUS:
		r = close_status(p);
		break;
	}
	p->block = B_TOP;
	memset(p->seen, 0, sizeof(p->seen));
	return r;
}

static int one_line(struct parser *p, char *s)
{
	char *argv[MAX_WORDS];
	int argc = 0, i, r;

	r = split(p, s, argv, &argc);
	if (r || !argc)
		return r;

	if (!strcmp(argv[argc - 1], "{")) {
		if (argc == 1)
			return fail(p, p->line, "'{' without a block name");
		return open_block(p, argv, argc);
	}
	if (!strcmp(argv[0], "}")) {
		if (argc > 1)
			return fail(p, p->line, "unexpected '%s' after '}'",
				    argv[1]);
		return close_block(p);
	}
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "{"))
			return fail(p, p->line, "'{' must end the line");
		if (!strcmp(argv[i], "}"))
			return fail(p, p->line, "'}' must be on a line of its own");
	}
	/* a block keyword without its brace */
	if (p->block == B_TOP && (!strcmp(argv[0], "vip") ||
				  !strcmp(argv[0], "vrrp") ||
				  !strcmp(argv[0], "status")))
		return fail(p, p->line, "%s: missing '{' at end of line",
			    argv[0]);

	switch (p->block) {
	case B_TOP:
		return top_line(p, argv, argc);
	case B_VIP:
		return vip_line(p, argv, argc);
	case B_VRRP:
		return vrrp_line(p, argv, argc);
	case B_STATUS:
		return status_line(p, argv, argc);
	}
	return 0;
}

/* Checks that need the whole file. `last` is the last line number. */
static int finish(struct parser *p, int last)
{
	struct kha_config *cfg = p->cfg;
	char a[INET_ADDRSTRLEN], buf[64];
	int i;

	if (p->block != B_TOP)
		return fail(p, p->block_line, "%s: '{' not closed",
			    p->block_name);
	if (!cfg->ifname[0])
		return fail(p, last, "missing 'interface'");
	if (!cfg->nr_vips)
		return fail(p, last, "no vip block");

	/* SNAT claims VIP:port in the range; a VIP port inside it collides */
	for (i = 0; i < cfg->nr_vips; i++) {
		const struct kha_vip_conf *v = &cfg->vips[i];
		uint16_t port = ntohs(v->addr.sin_port);

		if (port >= cfg->snat_port_lo && port <= cfg->snat_port_hi)
			return fail(p, v->line,
				    "vip %s: port %u inside snat_ports %u-%u",
				    sin_str(&v->addr, buf, sizeof(buf)), port,
				    cfg->snat_port_lo, cfg->snat_port_hi);
	}

	/* the node's own address: a real unicast one, not a VIP or a peer */
	if (p->local_line) {
		struct in_addr la = cfg->local_addr;

		addr_str(la, a);
		if (!unicast_ok(la))
			return fail(p, p->local_line,
				    "local_address %s: not a unicast address",
				    a);
		for (i = 0; i < cfg->nr_vips; i++)
			if (cfg->vips[i].addr.sin_addr.s_addr == la.s_addr)
				return fail(p, p->local_line,
					    "local_address %s: is a vip (line %d)",
					    a, cfg->vips[i].line);
		for (i = 0; i < cfg->vrrp.nr_peers; i++)
			if (cfg->vrrp.peers[i].s_addr == la.s_addr)
				return fail(p, p->local_line,
					    "local_address %s: is a vrrp unicast_peer",
					    a);
	}

	/* VRRP announces the VIPs: a peer or source address cannot be one */
	if (cfg->vrrp.enabled && p->src_line)
		for (i = 0; i < cfg->nr_vips; i++)
			if (cfg->vips[i].addr.sin_addr.s_addr ==
			    cfg->vrrp.src_addr.s_addr)
				return fail(p, p->src_line,
					    "unicast_src_ip %s: is a vip (line %d)",
					    addr_str(cfg->vrrp.src_addr, a),
					    cfg->vips[i].line);
	return 0;
}

/* ---- API ------------------------------------------------------------- */

void kha_config_defaults(struct kha_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->pin_root, KHA_PIN_ROOT_DEFAULT);
	strcpy(cfg->ctl_socket, KHA_CTL_SOCK_DEFAULT);
	cfg->snat_port_lo = KHA_SNAT_PORT_LO_DEFAULT;
	cfg->snat_port_hi = KHA_SNAT_PORT_HI_DEFAULT;
	cfg->ring_size = KHA_RING_SIZE_DEFAULT;
	cfg->local_clients = true;

	cfg->vrrp.version = 2;
	cfg->vrrp.priority = 100;
	cfg->vrrp.advert_int_cs = 100;
	cfg->vrrp.initial_state = KHA_VRRP_BACKUP;
	cfg->vrrp.preempt = true;
	cfg->vrrp.track_weight = 30;
	cfg->vrrp.garp_delay_ms = 5000;
	cfg->vrrp.garp_repeat = 5;
	cfg->vrrp.garp_refresh_ms = 0;
	cfg->vrrp.garp_refresh_repeat = 1;

	cfg->status.listen.sin_family = AF_INET;
	cfg->status.listen.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfg->status.listen.sin_port = htons(10080);
}

int kha_config_nr_backends(const struct kha_config *cfg)
{
	int i, n = 0;

	for (i = 0; i < cfg->nr_vips; i++)
		n += cfg->vips[i].nr_backends;
	return n;
}

int kha_config_parse(const char *name, const char *text,
		     struct kha_config *cfg, char *err, size_t errlen)
{
	struct parser *p;
	char *line;
	const char *s = text;
	int r = 0;

	if (err && errlen)
		err[0] = 0;
	kha_config_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);
	p = calloc(1, sizeof(*p));
	line = malloc(MAX_LINE + 1);
	if (!p || !line) {
		free(p);
		free(line);
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	p->name = name;
	p->err = err;
	p->errlen = errlen;
	p->cfg = cfg;

	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);

		p->line++;
		if (len > MAX_LINE) {
			r = fail(p, p->line, "line longer than %d characters",
				 MAX_LINE);
			goto out;
		}
		memcpy(line, s, len);
		line[len] = 0;
		if (len && line[len - 1] == '\r')
			line[len - 1] = 0;
		r = one_line(p, line);
		if (r)
			goto out;
		s += len;
		if (*s == '\n')
			s++;
	}
	r = finish(p, p->line ? p->line : 1);
out:
	free(line);
	free(p);
	return r;
}

int kha_config_load(const char *path, struct kha_config *cfg, char *err,
		    size_t errlen)
{
	FILE *f;
	char *buf;
	size_t n;
	int r;

	if (err && errlen)
		err[0] = 0;
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path,
				 strerror(-r));
		return r;
	}
	buf = malloc(MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, MAX_FILE + 1, f);
	if (ferror(f)) {
		r = -EIO;
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot read: %s", path,
				 strerror(EIO));
		goto out;
	}
	if (n > MAX_FILE) {
		r = -EFBIG;
		if (err && errlen)
			snprintf(err, errlen, "%s: larger than %d bytes", path,
				 MAX_FILE);
		goto out;
	}
	buf[n] = 0;
	if (memchr(buf, 0, n)) {
		r = -EINVAL;
		if (err && errlen)
			snprintf(err, errlen, "%s: contains a NUL byte", path);
		goto out;
	}
	r = kha_config_parse(path, buf, cfg, err, errlen);
out:
	free(buf);
	fclose(f);
	return r;
}
