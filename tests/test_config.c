// SPDX-License-Identifier: GPL-2.0
/*
 * Config parser: the reference deployment reads as the operator meant it,
 * every key lands in its field, and every mistake is one exact
 * `file:line: message` naming the offending value, with -EINVAL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kha_test.h"
#include "config.h"

static struct kha_config cfg; /* ~2.5 MB: not on the stack */
static char err[512];

static uint32_t ip(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

/* find a test input whether run from the tree root or from build/tests */
static const char *src_path(const char *rel, char *buf, size_t len)
{
	static const char *const pre[] = { "", "../", "../../" };
	unsigned int i;

	for (i = 0; i < 3; i++) {
		snprintf(buf, len, "%s%s", pre[i], rel);
		if (!access(buf, R_OK))
			return buf;
	}
	return rel;
}

static void assert_sin(const struct sockaddr_in *s, const char *addr,
		       uint16_t port)
{
	CU_ASSERT_EQUAL(s->sin_family, AF_INET);
	CU_ASSERT_EQUAL(s->sin_addr.s_addr, ip(addr));
	CU_ASSERT_EQUAL(ntohs(s->sin_port), port);
}

/* The reference deployment, as docs/config.md shows it. */
static const char reference[] =
	"# reference deployment\n"
	"interface eth0\n"
	"local_address 172.27.129.105\n"
	"\n"
	"vip 172.27.129.253:8443 {\n"
	"\tcheck https\n"
	"\tcheck_path /readyz\n"
	"\tinter 2000\n"
	"\tfall 2\n"
	"\trise 2\n"
	"\tbackend 172.27.129.105:6443\n"
	"\tbackend 172.27.129.111:6443\n"
	"\tbackend 172.27.129.112:6443\n"
	"}\n"
	"\n"
	"vrrp {\n"
	"\tvirtual_router_id 68\n"
	"\tpriority 120\n"
	"\tadvert_int 3\n"
	"\tstate MASTER\n"
	"}\n"
	"status {\n"
	"\tlisten 127.0.0.1:10080\n"
	"}\n";

static void check_reference(const struct kha_config *c)
{
	static const char *const be[] = { "172.27.129.105", "172.27.129.111",
					   "172.27.129.112" };
	const struct kha_vip_conf *v = &c->vips[0];
	int i;

	CU_ASSERT_STRING_EQUAL(c->ifname, "eth0");
	CU_ASSERT_EQUAL(c->nr_vips, 1);
	assert_sin(&v->addr, "172.27.129.253", 8443);
	CU_ASSERT_EQUAL_FATAL(v->nr_backends, 3);
	CU_ASSERT_EQUAL(kha_config_nr_backends(c), 3);
	for (i = 0; i < 3; i++) {
		const struct kha_backend_conf *b = &v->backends[i];

		assert_sin(&b->addr, be[i], 6443);
		CU_ASSERT_EQUAL(b->weight, 1);
		CU_ASSERT_EQUAL(b->check.type, KHA_CHECK_HTTPS);
		CU_ASSERT_STRING_EQUAL(b->check.path, "/readyz");
		CU_ASSERT_EQUAL(b->check.inter, 2000);
		CU_ASSERT_EQUAL(b->check.fall, 2);
		CU_ASSERT_EQUAL(b->check.rise, 2);
		CU_ASSERT_EQUAL(b->check.timeout, 2000);
		CU_ASSERT_EQUAL(b->check.port, 0);
		CU_ASSERT_EQUAL(b->check.fastinter, 0);
		CU_ASSERT_EQUAL(b->check.downinter, 0);
		CU_ASSERT_STRING_EQUAL(b->check.ca_file, "");
	}
	CU_ASSERT_EQUAL(c->local_addr.s_addr, ip("172.27.129.105"));
	CU_ASSERT_TRUE(c->local_clients);
	CU_ASSERT_EQUAL(c->ring_size, 65537);
	CU_ASSERT_EQUAL(c->snat_port_lo, 10240);
	CU_ASSERT_EQUAL(c->snat_port_hi, 32767);
	CU_ASSERT_EQUAL(c->xdp_generic, 0);
	CU_ASSERT_STRING_EQUAL(c->pin_root, "/sys/fs/bpf/kha-xdp");
	CU_ASSERT_STRING_EQUAL(c->ctl_socket, "/run/kha-xdp/kha-xdp.sock");

	CU_ASSERT_TRUE(c->vrrp.enabled);
	CU_ASSERT_EQUAL(c->vrrp.version, 2);
	CU_ASSERT_EQUAL(c->vrrp.vrid, 68);
	CU_ASSERT_EQUAL(c->vrrp.priority, 120);
	CU_ASSERT_EQUAL(c->vrrp.advert_int_cs, 300);
	CU_ASSERT_EQUAL(c->vrrp.initial_state, KHA_VRRP_MASTER);
	CU_ASSERT_TRUE(c->vrrp.preempt);
	CU_ASSERT_EQUAL(c->vrrp.track_weight, 30);
	CU_ASSERT_EQUAL(c->vrrp.garp_delay_ms, 5000);
	CU_ASSERT_EQUAL(c->vrrp.garp_repeat, 5);
	CU_ASSERT_EQUAL(c->vrrp.nr_peers, 0);

	CU_ASSERT_TRUE(c->status.enabled);
	assert_sin(&c->status.listen, "127.0.0.1", 10080);
	CU_ASSERT_STRING_EQUAL(c->status.user, "");
}

static void test_reference(void)
{
	int r = kha_config_parse("kha-xdp.conf", reference, &cfg, err,
				 sizeof(err));

	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_STRING_EQUAL(cfg.path, "kha-xdp.conf");
	check_reference(&cfg);
}

/* docs/kha-xdp.conf.example is what `make install` puts in /etc */
static void test_example_file(void)
{
	char path[256];
	int r;

	src_path("docs/kha-xdp.conf.example", path, sizeof(path));
	r = kha_config_load(path, &cfg, err, sizeof(err));
	if (r)
		fprintf(stderr, "\n  %s\n", err);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	check_reference(&cfg);
	CU_ASSERT_EQUAL(cfg.vips[0].backends[1].check.timeout, 2000);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_refresh_ms, 0);
}

static void test_defaults(void)
{
	const char *t = "interface eth0\n"
			"vip 10.0.0.100:8443 {\n"
			"\tbackend 10.0.0.1:6443\n"
			"\tbackend 10.0.0.2:6443 inter 500\n"
			"}\n";
	const struct kha_check_conf *c;

	CU_ASSERT_EQUAL_FATAL(kha_config_parse("d", t, &cfg, err, sizeof(err)), 0);
	c = &cfg.vips[0].backends[0].check;
	/* haproxy's defaults */
	CU_ASSERT_EQUAL(c->type, KHA_CHECK_TCP);
	CU_ASSERT_EQUAL(c->inter, 2000);
	CU_ASSERT_EQUAL(c->timeout, 2000);
	CU_ASSERT_EQUAL(c->fall, 3);
	CU_ASSERT_EQUAL(c->rise, 2);
	CU_ASSERT_STRING_EQUAL(c->path, "/readyz");
	CU_ASSERT_EQUAL(cfg.vips[0].backends[0].weight, 1);
	/* an unset timeout follows the backend's own inter */
	CU_ASSERT_EQUAL(cfg.vips[0].backends[1].check.inter, 500);
	CU_ASSERT_EQUAL(cfg.vips[0].backends[1].check.timeout, 500);
	/* no vrrp/status block: off, with keepalived's defaults ready */
	CU_ASSERT_FALSE(cfg.vrrp.enabled);
	CU_ASSERT_EQUAL(cfg.vrrp.version, 2);
	CU_ASSERT_EQUAL(cfg.vrrp.priority, 100);
	CU_ASSERT_EQUAL(cfg.vrrp.advert_int_cs, 100);
	CU_ASSERT_EQUAL(cfg.vrrp.initial_state, KHA_VRRP_BACKUP);
	CU_ASSERT_TRUE(cfg.vrrp.preempt);
	CU_ASSERT_EQUAL(cfg.vrrp.preempt_delay_ms, 0);
	CU_ASSERT_EQUAL(cfg.vrrp.track_weight, 30);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_delay_ms, 5000);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_repeat, 5);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_refresh_ms, 0);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_refresh_repeat, 1);
	CU_ASSERT_FALSE(cfg.status.enabled);
	assert_sin(&cfg.status.listen, "127.0.0.1", 10080);
	CU_ASSERT_EQUAL(cfg.local_addr.s_addr, 0);
	CU_ASSERT_STRING_EQUAL(cfg.cgroup, "");

	/* kha_config_defaults alone: valid, no VIPs */
	memset(&cfg, 0xa5, sizeof(cfg));
	kha_config_defaults(&cfg);
	CU_ASSERT_EQUAL(cfg.nr_vips, 0);
	CU_ASSERT_EQUAL(cfg.ring_size, 65537);
	CU_ASSERT_STRING_EQUAL(cfg.ifname, "");
}

/* tests/conf/full.conf sets every key to something not its default */
static void test_every_key(void)
{
	const struct kha_vip_conf *v;
	const struct kha_backend_conf *b;
	char path[256];
	int r;

	src_path("tests/conf/full.conf", path, sizeof(path));
	r = kha_config_load(path, &cfg, err, sizeof(err));
	if (r)
		fprintf(stderr, "\n  %s\n", err);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_STRING_EQUAL(cfg.ifname, "lb0");
	CU_ASSERT_EQUAL(cfg.snat_port_lo, 20000);
	CU_ASSERT_EQUAL(cfg.snat_port_hi, 29999);
	CU_ASSERT_EQUAL(cfg.xdp_generic, 1);
	CU_ASSERT_EQUAL(cfg.ring_size, 1009);
	CU_ASSERT_STRING_EQUAL(cfg.pin_root, "/sys/fs/bpf/cfg-test");
	CU_ASSERT_STRING_EQUAL(cfg.ctl_socket, "/run/cfg-test.sock");
	CU_ASSERT_EQUAL(cfg.local_addr.s_addr, ip("10.1.0.5"));
	CU_ASSERT_FALSE(cfg.local_clients);
	CU_ASSERT_STRING_EQUAL(cfg.cgroup, "/sys/fs/cgroup/unified/kha");

	CU_ASSERT_EQUAL_FATAL(cfg.nr_vips, 2);
	CU_ASSERT_EQUAL(kha_config_nr_backends(&cfg), 5);
	v = &cfg.vips[0];
	assert_sin(&v->addr, "10.1.0.100", 443);
	CU_ASSERT_EQUAL(v->line, 12);
	CU_ASSERT_EQUAL_FATAL(v->nr_backends, 4);
	/* first backend: all of the vip's settings */
	b = &v->backends[0];
	assert_sin(&b->addr, "10.1.0.11", 6443);
	CU_ASSERT_EQUAL(b->line, 24);
	CU_ASSERT_EQUAL(b->weight, 1);
	CU_ASSERT_EQUAL(b->check.type, KHA_CHECK_HTTP);
	CU_ASSERT_STRING_EQUAL(b->check.path, "/healthz?verbose");
	CU_ASSERT_EQUAL(b->check.port, 8080);
	CU_ASSERT_STRING_EQUAL(b->check.sni, "api.example.test");
	CU_ASSERT_STRING_EQUAL(b->check.ca_file, "/etc/ssl/ca.pem");
	CU_ASSERT_EQUAL(b->check.inter, 3000);
	CU_ASSERT_EQUAL(b->check.fastinter, 500);
	CU_ASSERT_EQUAL(b->check.downinter, 10000);
	CU_ASSERT_EQUAL(b->check.timeout, 1500);
	CU_ASSERT_EQUAL(b->check.fall, 4);
	CU_ASSERT_EQUAL(b->check.rise, 5);
	CU_ASSERT_EQUAL(v->backends[1].weight, 2);
	CU_ASSERT_EQUAL(v->backends[1].check.inter, 3000);
	/* third: every setting overridden on its line */
	b = &v->backends[2];
	CU_ASSERT_EQUAL(b->weight, 0);
	CU_ASSERT_EQUAL(b->check.type, KHA_CHECK_TCP);
	CU_ASSERT_EQUAL(b->check.inter, 500);
	CU_ASSERT_EQUAL(b->check.fall, 3);
	CU_ASSERT_EQUAL(b->check.rise, 1);
	CU_ASSERT_EQUAL(b->check.port, 6444);
	CU_ASSERT_EQUAL(b->check.fastinter, 100);
	CU_ASSERT_EQUAL(b->check.downinter, 1000);
	CU_ASSERT_EQUAL(b->check.timeout, 200);
	CU_ASSERT_STRING_EQUAL(b->check.path, "/livez");
	CU_ASSERT_STRING_EQUAL(b->check.ca_file, "/ca2.pem");
	CU_ASSERT_STRING_EQUAL(b->check.sni, "other");
	/* fourth: the vip's timeout 1500 capped to its own inter 1000 */
	b = &v->backends[3];
	CU_ASSERT_EQUAL(b->weight, 256);
	CU_ASSERT_EQUAL(b->check.inter, 1000);
	CU_ASSERT_EQUAL(b->check.timeout, 1000);
	CU_ASSERT_EQUAL(b->check.fall, 4);

	v = &cfg.vips[1];
	assert_sin(&v->addr, "10.1.0.101", 6443);
	CU_ASSERT_EQUAL(v->backends[0].check.type, KHA_CHECK_NONE);
	CU_ASSERT_EQUAL(v->backends[0].weight, 3);
	CU_ASSERT_EQUAL(v->backends[0].check.fall, 3);

	CU_ASSERT_TRUE(cfg.vrrp.enabled);
	CU_ASSERT_EQUAL(cfg.vrrp.line, 35);
	CU_ASSERT_EQUAL(cfg.vrrp.version, 3);
	CU_ASSERT_EQUAL(cfg.vrrp.vrid, 42);
	CU_ASSERT_EQUAL(cfg.vrrp.priority, 254);
	CU_ASSERT_EQUAL(cfg.vrrp.advert_int_cs, 10);
	CU_ASSERT_EQUAL(cfg.vrrp.initial_state, KHA_VRRP_MASTER);
	CU_ASSERT_TRUE(cfg.vrrp.preempt);
	CU_ASSERT_EQUAL(cfg.vrrp.preempt_delay_ms, 2500);
	CU_ASSERT_EQUAL(cfg.vrrp.src_addr.s_addr, ip("10.1.0.5"));
	CU_ASSERT_EQUAL_FATAL(cfg.vrrp.nr_peers, 2);
	CU_ASSERT_EQUAL(cfg.vrrp.peers[0].s_addr, ip("10.1.0.6"));
	CU_ASSERT_EQUAL(cfg.vrrp.peers[1].s_addr, ip("10.1.0.7"));
	CU_ASSERT_STRING_EQUAL(cfg.vrrp.auth_pass, "");
	CU_ASSERT_EQUAL(cfg.vrrp.track_weight, 50);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_delay_ms, 2000);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_repeat, 3);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_refresh_ms, 60000);
	CU_ASSERT_EQUAL(cfg.vrrp.garp_refresh_repeat, 2);
	CU_ASSERT_STRING_EQUAL(cfg.vrrp.notify, "/usr/local/bin/kha notify");

	CU_ASSERT_TRUE(cfg.status.enabled);
	assert_sin(&cfg.status.listen, "0.0.0.0", 9100);
	CU_ASSERT_STRING_EQUAL(cfg.status.user, "ops");
	CU_ASSERT_STRING_EQUAL(cfg.status.password, "p#ss word");
}

/* v2 specifics the full file (v3) cannot show */
static void test_vrrp_v2(void)
{
	const char *t = "interface eth0\n"
			"vip 10.0.0.100:8443 {\n"
			"\tbackend 10.0.0.1:6443\n"
			"}\n"
			"vrrp {\n"
			"\tvirtual_router_id 1\n"
			"\tadvert_int 2s\n"
			"\tnopreempt\n"
			"\tauth_pass secret1\n"
			"\ttrack_weight 0\n"
			"\tstate backup\n"
			"}\n";

	CU_ASSERT_EQUAL_FATAL(kha_config_parse("v2", t, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.vrrp.version, 2);
	CU_ASSERT_EQUAL(cfg.vrrp.advert_int_cs, 200);
	CU_ASSERT_FALSE(cfg.vrrp.preempt);
	CU_ASSERT_STRING_EQUAL(cfg.vrrp.auth_pass, "secret1");
	CU_ASSERT_EQUAL(cfg.vrrp.track_weight, 0);
	CU_ASSERT_EQUAL(cfg.vrrp.initial_state, KHA_VRRP_BACKUP);
	CU_ASSERT_EQUAL(cfg.vrrp.nr_peers, 0);

	/* v3 fractions: 0.1 s and 40.95 s, the 12-bit maximum */
	t = "interface eth0\nvip 10.0.0.100:8443 {\nbackend 10.0.0.1:6443\n}\n"
	    "vrrp {\nversion 3\nvirtual_router_id 9\nadvert_int 0.1\n}\n";
	CU_ASSERT_EQUAL_FATAL(kha_config_parse("v3", t, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.vrrp.advert_int_cs, 10);
	t = "interface eth0\nvip 10.0.0.100:8443 {\nbackend 10.0.0.1:6443\n}\n"
	    "vrrp {\nadvert_int 40.95\nversion 3\nvirtual_router_id 9\n}\n";
	CU_ASSERT_EQUAL_FATAL(kha_config_parse("v3", t, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.vrrp.advert_int_cs, 4095);
}

/* Syntax details: comments, quotes, CRLF, blank lines, no final newline. */
static void test_syntax(void)
{
	const char *t = "  interface   eth0   # trailing comment\r\n"
			"\n"
			"\t# a whole-line comment\n"
			"vip 10.0.0.100:8443 {   # comment after brace\n"
			"backend 10.0.0.1:6443 weight 2#no space needed\n"
			"}";

	CU_ASSERT_EQUAL_FATAL(kha_config_parse("s", t, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.ifname, "eth0");
	CU_ASSERT_EQUAL(cfg.vips[0].backends[0].weight, 2);
	CU_ASSERT_EQUAL(cfg.vips[0].backends[0].line, 5);
}

#define V "vip 10.0.0.100:8443 {\n\tbackend 10.0.0.1:6443\n}\n"
#define I "interface eth0\n"
#define VH "vip 10.0.0.100:8443 {\n"
#define VR I V "vrrp {\n"

static const struct bad_case {
	const char *text;
	const char *msg;
} bad[] = {
	/* structure */
	{ I "foo bar\n" V, "t.conf:2: unknown key 'foo'" },
	{ I VH "\tchek tcp\n\tbackend 10.0.0.1:6443\n}\n",
	  "t.conf:3: unknown key 'chek' in vip 10.0.0.100:8443" },
	{ VR "\tvirtual_router_id 68\n\tinterface eth0\n}\n",
	  "t.conf:7: unknown key 'interface' in vrrp" },
	{ I V "status {\n\tbind 127.0.0.1:80\n}\n",
	  "t.conf:6: unknown key 'bind' in status" },
	{ I "frontend x {\n}\n", "t.conf:2: unknown block 'frontend'" },
	{ V, "t.conf:3: missing 'interface'" },
	{ I, "t.conf:1: no vip block" },
	{ "", "t.conf:1: missing 'interface'" },
	{ I V V, "t.conf:5: vip 10.0.0.100:8443: duplicate vip (first at line 2)" },
	{ I VH "\tbackend 10.0.0.1:6443\n", "t.conf:2: vip 10.0.0.100:8443: '{' not closed" },
	{ I V "}\n", "t.conf:5: unexpected '}'" },
	{ I VH "\tbackend 10.0.0.1:6443\n} x\n", "t.conf:4: unexpected 'x' after '}'" },
	{ I VH "\tbackend 10.0.0.1:6443 }\n", "t.conf:3: '}' must be on a line of its own" },
	{ I VH "vrrp {\n", "t.conf:3: vrrp: block inside vip 10.0.0.100:8443 (missing '}'?)" },
	{ I "vip 10.0.0.100:8443\n", "t.conf:2: vip: missing '{' at end of line" },
	{ I "interface eth1 {\n", "t.conf:2: interface: not a block" },
	{ I VH "}\n", "t.conf:2: vip 10.0.0.100:8443: no backend" },
	{ I V "vrrp {\nvirtual_router_id 1\n}\nvrrp {\n",
	  "t.conf:8: vrrp: second block (first at line 5)" },
	{ "interface \"eth0\n" V, "t.conf:1: unterminated quote" },
	{ I "vip\x01 10.0.0.100:8443 {\n", "t.conf:2: control character 0x01" },
	{ "interface\n" V, "t.conf:1: interface: missing argument" },
	{ "interface eth0 eth1\n" V, "t.conf:1: interface: unexpected argument 'eth1'" },
	{ I I V, "t.conf:2: interface: given twice (first at line 1)" },
	{ I VH "\tinter 1000\n\tinter 2000\n", "t.conf:4: inter: given twice" },
	{ I VH "\tinter\n", "t.conf:3: inter: missing argument" },
	{ I VH "\tfall 2 3\n", "t.conf:3: fall: unexpected argument '3'" },

	/* interface */
	{ "interface eth0/1\n" V, "t.conf:1: interface eth0/1: invalid interface name" },
	{ "interface abcdefghijklmnop\n" V,
	  "t.conf:1: interface abcdefghijklmnop: invalid interface name" },

	/* addresses and ports */
	{ I VH "\tbackend 10.0.0.300:6443\n}\n",
	  "t.conf:3: backend 10.0.0.300:6443: invalid IPv4 address '10.0.0.300'" },
	{ I VH "\tbackend 10.0.0.1:0\n}\n",
	  "t.conf:3: backend 10.0.0.1:0: port 0 out of range 1-65535" },
	{ I VH "\tbackend 10.0.0.1:65536\n}\n",
	  "t.conf:3: backend 10.0.0.1:65536: port 65536 out of range 1-65535" },
	{ I VH "\tbackend 10.0.0.1:https\n}\n",
	  "t.conf:3: backend 10.0.0.1:https: invalid port 'https'" },
	{ I "vip 10.0.0.100 {\n", "t.conf:2: vip 10.0.0.100: expected ADDRESS:PORT" },
	{ I "vip 224.0.0.18:8443 {\n", "t.conf:2: vip 224.0.0.18:8443: not a unicast address" },
	{ I VH "\tbackend 127.0.0.1:6443\n}\n",
	  "t.conf:3: backend 127.0.0.1:6443: not a unicast address" },
	{ I VH "\tbackend 10.0.0.100:8443\n}\n",
	  "t.conf:3: backend 10.0.0.100:8443: is the vip itself" },
	{ I VH "\tbackend 10.0.0.1:6443\n\tbackend 10.0.0.1:6443 weight 2\n}\n",
	  "t.conf:4: backend 10.0.0.1:6443: duplicate backend" },
	{ I VH "\tbackend\n}\n", "t.conf:3: backend: missing argument" },

	/* weights and probe settings */
	{ I VH "\tbackend 10.0.0.1:6443 weight 257\n}\n",
	  "t.conf:3: backend 10.0.0.1:6443: weight 257: out of range 0-256" },
	{ I VH "\tbackend 10.0.0.1:6443 weight -1\n}\n",
	  "t.conf:3: backend 10.0.0.1:6443: weight -1: out of range 0-256" },
	{ I VH "\tbackend 10.0.0.1:6443 weight 1.5\n}\n",
	  "t.conf:3: backend 10.0.0.1:6443: weight 1.5: not a number" },
	{ I VH "\tbackend 10.0.0.1:6443 weight\n}\n",
	  "t.conf:3: backend 10.0.0.1:6443: weight: missing argument" },
	{ I VH "\tbackend 10.0.0.1:6443 wieght 2\n}\n",
	  "t.conf:3: backend 10.0.0.1:6443: unknown option 'wieght'" },
	{ I VH "\tbackend 10.0.0.1:6443 weight 1 weight 2\n}\n",
	  "t.conf:3: backend 10.0.0.1:6443: weight: given twice" },
	{ I VH "\tbackend 10.0.0.1:6443 fall 0\n}\n",
	  "t.conf:3: backend 10.0.0.1:6443: fall 0: out of range 1-1000" },
	{ I VH "\tinter 0\n", "t.conf:3: inter 0: out of range 10ms-3600s" },
	{ I VH "\tinter 2h\n", "t.conf:3: inter 2h: out of range 10ms-3600s" },
	{ I VH "\tinter 2x\n", "t.conf:3: inter 2x: not a duration (e.g. 2000, 2s, 100ms)" },
	{ I VH "\tinter 0.0005s\n", "t.conf:3: inter 0.0005s: not a whole number of milliseconds" },
	{ I VH "\tfastinter 5ms\n", "t.conf:3: fastinter 5ms: out of range 10ms-3600s" },
	{ I VH "\ttimeout 0\n", "t.conf:3: timeout 0: out of range 1ms-3600s" },
	{ I VH "\tfall 0\n", "t.conf:3: fall 0: out of range 1-1000" },
	{ I VH "\trise 0\n", "t.conf:3: rise 0: out of range 1-1000" },
	{ I VH "\trise 1001\n", "t.conf:3: rise 1001: out of range 1-1000" },
	{ I VH "\tcheck ping\n", "t.conf:3: check ping: expected tcp, https, http or none" },
	{ I VH "\tcheck_port 0\n", "t.conf:3: check_port 0: out of range 1-65535" },
	{ I VH "\tcheck_path readyz\n", "t.conf:3: check_path readyz: must start with '/'" },
	{ I VH "\tca_file ca.crt\n", "t.conf:3: ca_file ca.crt: not an absolute path" },

	/* globals */
	{ "ring_size 65536\n" I V, "t.conf:1: ring_size 65536: not a prime in 3-131071" },
	{ "ring_size 262147\n" I V, "t.conf:1: ring_size 262147: not a prime in 3-131071" },
	{ "snat_ports 32767-10240\n" I V, "t.conf:1: snat_ports 32767-10240: inverted range" },
	{ "snat_ports 10240\n" I V, "t.conf:1: snat_ports 10240: expected LOW-HIGH" },
	{ "snat_ports 0-100\n" I V, "t.conf:1: snat_ports 0-100: port out of range 1-65535" },
	{ I "vip 10.0.0.100:20000 {\n\tbackend 10.0.0.1:6443\n}\n",
	  "t.conf:2: vip 10.0.0.100:20000: port 20000 inside snat_ports 10240-32767" },
	{ I V "snat_ports 8000-9000\n",
	  "t.conf:2: vip 10.0.0.100:8443: port 8443 inside snat_ports 8000-9000" },
	{ "xdp_mode fast\n" I V, "t.conf:1: xdp_mode fast: expected native or generic" },
	{ "local_clients maybe\n" I V, "t.conf:1: local_clients maybe: expected yes or no" },
	{ "pin_root bpf/kha\n" I V, "t.conf:1: pin_root bpf/kha: not an absolute path" },
	{ "control_socket /run/kha-xdp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n" I V,
	  "t.conf:1: control_socket /run/kha-xdp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock: longer than 107 characters" },
	{ "local_address 10.0.0.100\n" I V,
	  "t.conf:1: local_address 10.0.0.100: is a vip (line 3)" },
	{ "local_address 127.0.0.1\n" I V,
	  "t.conf:1: local_address 127.0.0.1: not a unicast address" },
	{ "local_address 10.0.0\n" I V,
	  "t.conf:1: local_address 10.0.0: invalid IPv4 address" },
	{ "local_address 10.0.0.7\n" VR "virtual_router_id 1\nunicast_peer 10.0.0.7\n}\n",
	  "t.conf:1: local_address 10.0.0.7: is a vrrp unicast_peer" },

	/* vrrp */
	{ VR "\tvirtual_router_id 0\n}\n", "t.conf:6: virtual_router_id 0: out of range 1-255" },
	{ VR "\tvirtual_router_id 256\n}\n", "t.conf:6: virtual_router_id 256: out of range 1-255" },
	{ VR "\tpriority 7\n}\n", "t.conf:5: vrrp: virtual_router_id missing" },
	{ VR "\tvirtual_router_id 68\n\tpriority 0\n}\n", "t.conf:7: priority 0: out of range 1-255" },
	{ VR "\tvirtual_router_id 68\n\tpriority 256\n}\n", "t.conf:7: priority 256: out of range 1-255" },
	{ VR "\tversion 4\n}\n", "t.conf:6: version 4: out of range 2-3" },
	{ VR "\tvirtual_router_id 68\n\tadvert_int 0.5\n}\n",
	  "t.conf:7: advert_int 0.5: VRRPv2 needs whole seconds" },
	{ VR "\tvirtual_router_id 68\n\tadvert_int 256\n}\n",
	  "t.conf:7: advert_int 256: out of range 1-255s for VRRPv2" },
	{ VR "\tvirtual_router_id 68\n\tadvert_int 41\n\tversion 3\n}\n",
	  "t.conf:7: advert_int 41: out of range 0.01-40.95s for VRRPv3" },
	{ VR "\tversion 3\n\tvirtual_router_id 68\n\tadvert_int 0.005\n}\n",
	  "t.conf:8: advert_int 0.005: not a multiple of 10ms" },
	{ VR "\tvirtual_router_id 68\n\tadvert_int fast\n}\n",
	  "t.conf:7: advert_int fast: not a duration (e.g. 3, 2s, 100ms)" },
	{ VR "\tvirtual_router_id 68\n\tauth_pass 123456789\n}\n",
	  "t.conf:7: auth_pass: 9 characters, at most 8" },
	{ VR "\tvirtual_router_id 68\n\tauth_pass secret\n\tversion 3\n}\n",
	  "t.conf:7: auth_pass: VRRPv3 has no authentication" },
	{ VR "\tvirtual_router_id 68\n\tstate FAULT\n}\n",
	  "t.conf:7: state FAULT: expected MASTER or BACKUP" },
	{ VR "\tvirtual_router_id 68\n\tnopreempt\n\tpreempt_delay 5\n}\n",
	  "t.conf:8: preempt_delay: contradicts nopreempt" },
	{ VR "\tvirtual_router_id 68\n\tnopreempt now\n}\n",
	  "t.conf:7: nopreempt: unexpected argument 'now'" },
	{ VR "\tvirtual_router_id 68\n\tunicast_peer 10.0.0.7\n\tunicast_peer 10.0.0.7\n}\n",
	  "t.conf:8: unicast_peer 10.0.0.7: duplicate peer" },
	{ VR "\tvirtual_router_id 68\n\tunicast_peer 10.0.0.777\n}\n",
	  "t.conf:7: unicast_peer 10.0.0.777: invalid IPv4 address" },
	{ VR "\tvirtual_router_id 68\n\tunicast_src_ip 10.0.0.7\n\tunicast_peer 10.0.0.7\n}\n",
	  "t.conf:7: unicast_src_ip 10.0.0.7: also a unicast_peer" },
	{ VR "\tvirtual_router_id 68\n\tpreempt\n\tnopreempt\n}\n",
	  "t.conf:8: nopreempt: contradicts preempt" },
	{ VR "\tvirtual_router_id 68\n\tunicast_src_ip 10.0.0.100\n}\n",
	  "t.conf:7: unicast_src_ip 10.0.0.100: is a vip (line 2)" },
	{ VR "\tvirtual_router_id 68\n\tpriority 100\n\tpriority 110\n}\n",
	  "t.conf:8: priority: given twice (first at line 7)" },
	{ VR "\tvirtual_router_id 68\n\ttrack_weight 255\n}\n",
	  "t.conf:7: track_weight 255: out of range -254-254" },
	{ VR "\tvirtual_router_id 68\n\tgarp_master_repeat 0\n}\n",
	  "t.conf:7: garp_master_repeat 0: out of range 1-255" },
	{ VR "\tvirtual_router_id 68\n\tnotify kha-notify\n}\n",
	  "t.conf:7: notify kha-notify: not an absolute path" },

	/* status */
	{ I V "status {\n\tlisten 0.0.0.0:10080\n}\n",
	  "t.conf:6: listen 0.0.0.0:10080: not loopback, needs user and password" },
	{ I V "status {\n\tuser admin\n}\n", "t.conf:5: status: user and password go together" },
	{ I V "status {\n\tlisten 127.0.0.1:99999\n}\n",
	  "t.conf:6: listen 127.0.0.1:99999: port 99999 out of range 1-65535" },
};

static void test_bad(void)
{
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r;

		strcpy(err, "(untouched)");
		r = kha_config_parse("t.conf", bad[i].text, &cfg, err,
				     sizeof(err));
		if (r != -EINVAL || strcmp(err, bad[i].msg))
			fprintf(stderr, "\n  case %u: r=%d\n  want: %s\n  got:  %s",
				i, r, bad[i].msg, err);
		CU_ASSERT_EQUAL(r, -EINVAL);
		CU_ASSERT_STRING_EQUAL(err, bad[i].msg);
	}
	CU_ASSERT(sizeof(bad) / sizeof(bad[0]) >= 30);
}

/* Limits: KHA_MAX_VIPS vips, KHA_MAX_BACKENDS backends over all vips. */
static void test_limits(void)
{
	static char t[64 * 1024];
	size_t o;
	int i;

	o = snprintf(t, sizeof(t), "interface eth0\n");
	for (i = 0; i < KHA_MAX_VIPS; i++)
		o += snprintf(t + o, sizeof(t) - o,
			      "vip 10.0.1.%d:443 {\nbackend 10.0.2.1:6443\n}\n",
			      i + 1);
	CU_ASSERT_EQUAL(kha_config_parse("t.conf", t, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.nr_vips, KHA_MAX_VIPS);
	snprintf(t + o, sizeof(t) - o,
		 "vip 10.0.1.200:443 {\nbackend 10.0.2.1:6443\n}\n");
	CU_ASSERT_EQUAL(kha_config_parse("t.conf", t, &cfg, err, sizeof(err)),
			-EINVAL);
	snprintf(t, sizeof(t), "t.conf:%d: vip 10.0.1.200:443: more than %d vips",
		 2 + 3 * KHA_MAX_VIPS, KHA_MAX_VIPS);
	CU_ASSERT_STRING_EQUAL(err, t);

	/* backends: 200 in one vip + 56 in another is the limit */
	o = snprintf(t, sizeof(t), "interface eth0\nvip 10.0.1.1:443 {\n");
	for (i = 0; i < 200; i++)
		o += snprintf(t + o, sizeof(t) - o, "backend 10.0.3.%d:6443\n",
			      i + 1);
	o += snprintf(t + o, sizeof(t) - o, "}\nvip 10.0.1.2:443 {\n");
	for (i = 0; i < KHA_MAX_BACKENDS - 200; i++)
		o += snprintf(t + o, sizeof(t) - o, "backend 10.0.4.%d:6443\n",
			      i + 1);
	snprintf(t + o, sizeof(t) - o, "}\n");
	CU_ASSERT_EQUAL(kha_config_parse("t.conf", t, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(kha_config_nr_backends(&cfg), KHA_MAX_BACKENDS);
	snprintf(t + o, sizeof(t) - o, "backend 10.0.4.250:6443\n}\n");
	CU_ASSERT_EQUAL(kha_config_parse("t.conf", t, &cfg, err, sizeof(err)),
			-EINVAL);
	snprintf(t, sizeof(t),
		 "t.conf:%d: backend 10.0.4.250:6443: more than %d backends",
		 2 + 200 + 2 + (KHA_MAX_BACKENDS - 200) + 1, KHA_MAX_BACKENDS);
	CU_ASSERT_STRING_EQUAL(err, t);

	/* an over-long line is one error, not a truncated parse */
	memset(t, 'x', 5000);
	t[5000] = 0;
	CU_ASSERT_EQUAL(kha_config_parse("t.conf", t, &cfg, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "t.conf:1: line longer than 4096 characters");
}

static void test_load_errors(void)
{
	char path[] = "/tmp/cfg-test-XXXXXX";
	char want[128];
	int fd, r;

	r = kha_config_load("/nonexistent/kha-xdp.conf", &cfg, err, sizeof(err));
	CU_ASSERT_EQUAL(r, -ENOENT);
	CU_ASSERT_STRING_EQUAL(err, "/nonexistent/kha-xdp.conf: cannot open: No such file or directory");

	/* a file's errors carry its path as given */
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, "interface eth0\nvip 10.0.0.1:80 {\n", 33) == 33);
	close(fd);
	r = kha_config_load(path, &cfg, err, sizeof(err));
	CU_ASSERT_EQUAL(r, -EINVAL);
	snprintf(want, sizeof(want), "%s:2: vip 10.0.0.1:80: '{' not closed", path);
	CU_ASSERT_STRING_EQUAL(err, want);
	unlink(path);
}

static CU_TestInfo config_tests[] = {
	{ "reference", test_reference },
	{ "example_file", test_example_file },
	{ "defaults", test_defaults },
	{ "every_key", test_every_key },
	{ "vrrp_v2_v3", test_vrrp_v2 },
	{ "syntax", test_syntax },
	{ "malformed", test_bad },
	{ "limits", test_limits },
	{ "load_errors", test_load_errors },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "config", config_tests, NULL, NULL },
	{ 0 },
};

KHA_TEST_MAIN(suites)
