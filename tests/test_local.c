// SPDX-License-Identifier: GPL-2.0
/*
 * Local backends (tc egress, path 4) and local clients (cgroup connect4 /
 * getpeername4, path 5).
 *
 *  tc_packets  BPF_PROG_TEST_RUN table: input frame -> expected verdict and
 *              expected output bytes; every expected frame is built from
 *              scratch (checksums computed over the final bytes), never by
 *              patching the input, so an incremental-update bug shows.
 *  tc_attach   user/local.c on a veth in a private netns: our filter only,
 *              the clsact rule, others' filters left alone.
 *  cgroup      user/local.c attached to a child cgroup of our own, in a
 *              private netns with listeners on 127.0.0.x: connect(VIP)
 *              lands on the backend Maglev predicts for lb_config.local_addr,
 *              getpeername says VIP:8443, everything else is untouched,
 *              another netns in the same cgroup is untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kha_test.h"
#include "tc_egress.skel.h"
#include "local.h"
#include "flows.h"
#include "maglev.h"
#include "../headers/kha_abi.h"
#include "../headers/kha_hash.h"

#define RING 13 /* prime, small: the test fills it by hand */

/* ---- packet building, checksums from scratch --------------------------- */

static uint16_t csum_fold32(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add_bytes(uint32_t s, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

struct spec {
	const char *name;
	const char *saddr, *daddr;
	uint16_t sport, dport;
	uint8_t proto;     /* 6 or 17 */
	int opt_len;       /* IPv4 options, multiple of 4 */
	int payload;       /* bytes after the L4 header */
	uint16_t frag;     /* ORed into frag_off (MF / offset) */
	uint16_t ethertype;/* 0 = IPv4 */
	int cut;           /* > 0: truncate the frame to this many bytes */
	int ihl_override;  /* > 0: write this IHL (malformed) */
};

/* Ethernet + IPv4 (+ options) + TCP/UDP + payload; returns the length. */
static size_t build(uint8_t *b, const struct spec *s)
{
	static const uint8_t dmac[6] = { 2, 0, 0, 0, 0, 0xc1 };
	static const uint8_t smac[6] = { 2, 0, 0, 0, 0, 0x51 };
	size_t ihl = 20 + s->opt_len, l4h = s->proto == 6 ? 20 : 8;
	size_t l4 = l4h + s->payload, tot = ihl + l4;
	uint8_t *ip = b + 14, *th = ip + ihl;
	uint16_t et = s->ethertype ? s->ethertype : ETH_P_IP;
	uint32_t sum;
	size_t i;

	memset(b, 0, 14 + tot);
	memcpy(b, dmac, 6);
	memcpy(b + 6, smac, 6);
	b[12] = et >> 8;
	b[13] = et & 0xff;

	ip[0] = 0x40 | (s->ihl_override ? (size_t)s->ihl_override : ihl / 4);
	ip[2] = tot >> 8;
	ip[3] = tot & 0xff;
	ip[4] = 0x12;
	ip[5] = 0x34;
	ip[6] = (0x4000 | s->frag) >> 8;
	ip[7] = (0x4000 | s->frag) & 0xff;
	ip[8] = 64;
	ip[9] = s->proto;
	inet_pton(AF_INET, s->saddr, ip + 12);
	inet_pton(AF_INET, s->daddr, ip + 16);
	if (s->opt_len) {
		/* record route: type 7, length, pointer 4, slots; then EOL */
		ip[20] = 7;
		ip[21] = s->opt_len - 1;
		ip[22] = 4;
	}

	th[0] = s->sport >> 8;
	th[1] = s->sport & 0xff;
	th[2] = s->dport >> 8;
	th[3] = s->dport & 0xff;
	if (s->proto == 6) {
		th[4] = 0xde, th[5] = 0xad, th[6] = 0xbe, th[7] = 0xef; /* seq */
		th[8] = 0x01, th[9] = 0x02, th[10] = 0x03, th[11] = 0x04;
		th[12] = 5 << 4;
		th[13] = 0x18; /* PSH|ACK */
		th[14] = 0xfa, th[15] = 0xf0;
	} else {
		th[4] = l4 >> 8;
		th[5] = l4 & 0xff;
	}
	for (i = 0; i < (size_t)s->payload; i++)
		th[l4h + i] = (uint8_t)(i * 7 + 3);

	/* L4 checksum: pseudo-header + header + payload, field zero */
	sum = csum_add_bytes(0, ip + 12, 8);
	sum += s->proto + l4;
	sum = csum_add_bytes(sum, th, l4);
	{
		uint16_t c = csum_fold32(sum);
		size_t off = s->proto == 6 ? 16 : 6;

		if (s->proto == 17 && !c)
			c = 0xffff;
		th[off] = c >> 8;
		th[off + 1] = c & 0xff;
	}
	sum = csum_add_bytes(0, ip, ihl);
	ip[10] = csum_fold32(sum) >> 8;
	ip[11] = csum_fold32(sum) & 0xff;

	if (s->cut > 0 && (size_t)s->cut < 14 + tot)
		return s->cut;
	return 14 + tot;
}

/* ---- data plane stand-in: the maps the XDP loader would pin ------------ */

static struct tc_egress *dp; /* owns one full set of maps */

static void be32_of(const char *a, __be32 *out)
{
	inet_pton(AF_INET, a, out);
}

static int dp_open(void)
{
	dp = tc_egress__open();
	if (!dp)
		return -errno;
	/* a small ring: the test fills it by hand (the flow tables keep
	 * their size: the programs probe them modulo KHA_FLOW_SLOTS) */
	bpf_map__set_max_entries(dp->maps.rings, KHA_RING_LINES_PER_SLOT * RING);
	return tc_egress__load(dp);
}

static void dp_close(void)
{
	tc_egress__destroy(dp);
	dp = NULL;
}

static int dp_pin(const char *dir)
{
	struct bpf_map *m;
	char path[512];

	mkdir(dir, 0700);
	bpf_object__for_each_map(m, dp->obj) {
		if (bpf_map__is_internal(m))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(m));
		if (bpf_map__pin(m, path))
			return -1;
	}
	return 0;
}

static void dp_unpin(const char *dir)
{
	struct bpf_map *m;
	char path[512];

	bpf_object__for_each_map(m, dp->obj) {
		if (bpf_map__is_internal(m))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(m));
		unlink(path);
	}
	rmdir(dir);
}

static uint64_t percpu_packets(struct bpf_map *map, uint32_t id)
{
	int ncpu = libbpf_num_possible_cpus();
	struct kha_counters c[ncpu > 0 ? ncpu : 1];
	uint64_t n = 0;
	int i;

	if (ncpu <= 0 || bpf_map_lookup_elem(bpf_map__fd(map), &id, c))
		return ~0ull;
	for (i = 0; i < ncpu; i++)
		n += c[i].packets;
	return n;
}

/* ---- tc_packets ------------------------------------------------------- */

#define NODE "10.0.0.1"
#define PEER_BE "10.0.0.2"
#define VIP "10.0.0.100"
#define CLIENT "10.0.9.9"

/*
 * Plant a snat slot as XDP would (user/flows.c keeps bpf/flows.h's rules)
 * through an mmap of the table. @local: a local-backend entry, keyed
 * backend:6443 -> client:port (@port = @cport); else a remote one, keyed
 * backend:6443 -> VIP:port (the SNAT port), which the tc hook must never
 * take.
 */
static int snat_put(const char *backend, uint16_t port, bool local,
		    const char *client, uint16_t cport, uint32_t be_id)
{
	struct kha_snat_slot v = {};
	void *tab = NULL;
	size_t len = 0;
	int ret;

	v.stamp = kha_flow_now();
	v.backend_id = be_id;
	be32_of(backend, &v.backend.v4);
	v.backend_port = htons(6443);
	v.port = htons(port);
	if (local)
		v.flags = KHA_SNAT_F_LOCAL;
	be32_of(client, &v.client.v4);
	v.client_port = htons(cport);
	be32_of(VIP, &v.vip.v4);
	v.vip_port = htons(8443);
	ret = kha_flows_map(bpf_map__fd(dp->maps.snat), sizeof(v), KHA_FLOW_SLOTS,
			    &tab, &len);
	if (ret)
		return ret;
	ret = kha_snat_put(tab, &v);
	kha_flows_unmap(tab, len);
	return ret < 0 ? ret : 0;
}

/* backend @id of VIP 3, so the hook can count replies against both */
static int backend_put(uint32_t id, const char *addr, uint32_t flags)
{
	struct kha_backend be = { .port = htons(6443), .family = KHA_AF_INET,
				  .flags = KHA_BE_F_PRESENT | flags,
				  .vip_id = 3, .weight = 1 };

	be32_of(addr, &be.addr.v4);
	return bpf_map_update_elem(bpf_map__fd(dp->maps.backends), &id, &be,
				   BPF_ANY);
}

static int tc_pkt_init(void)
{
	if (dp_open())
		return -1;
	/* path 4 entry, as XDP makes it for a local backend */
	/* path 2 entry (remote backend, SNAT to VIP:10240): never ours */
	return backend_put(7, NODE, KHA_BE_F_HEALTHY | KHA_BE_F_LOCAL) ||
	       backend_put(8, PEER_BE, KHA_BE_F_HEALTHY) ||
	       snat_put(NODE, 40000, true, CLIENT, 40000, 7) ||
	       snat_put(PEER_BE, 10240, false, CLIENT, 40001, 8);
}

static int tc_pkt_cleanup(void)
{
	dp_close();
	return 0;
}

struct tc_case {
	struct spec in;
	bool rewritten; /* expected: same spec with src VIP:8443 */
};

#define C(n, sa, da, sp, dp, pr, opt, pay, fr, et, cu, ihl, rw)              \
	{ { .name = n, .saddr = sa, .daddr = da, .sport = sp, .dport = dp,     \
	    .proto = pr, .opt_len = opt, .payload = pay, .frag = fr,           \
	    .ethertype = et, .cut = cu, .ihl_override = ihl }, rw }

static const struct tc_case tc_cases[] = {
	/*   name                           src      dst        sport  dport  pr opt  pay   frag    ethertype   cut        ihl rewritten */
	C("reply, no payload",             NODE,    CLIENT,    6443, 40000, 6,  0,    0, 0,      0,          0,         0, true),
	C("reply, 1 byte (odd length)",    NODE,    CLIENT,    6443, 40000, 6,  0,    1, 0,      0,          0,         0, true),
	C("reply, 1447 bytes",             NODE,    CLIENT,    6443, 40000, 6,  0, 1447, 0,      0,          0,         0, true),
	C("reply, 1448 bytes",             NODE,    CLIENT,    6443, 40000, 6,  0, 1448, 0,      0,          0,         0, true),
	C("reply, IPv4 options 12",        NODE,    CLIENT,    6443, 40000, 6, 12,  100, 0,      0,          0,         0, true),
	C("reply, IPv4 options 40",        NODE,    CLIENT,    6443, 40000, 6, 40,   33, 0,      0,          0,         0, true),
	C("other client port",             NODE,    CLIENT,    6443, 40002, 6,  0,   10, 0,      0,          0,         0, false),
	C("other client",                  NODE,    "10.0.9.10", 6443, 40000, 6, 0,  10, 0,      0,          0,         0, false),
	C("node's own traffic, sport 22",  NODE,    CLIENT,      22, 40000, 6,  0,   10, 0,      0,          0,         0, false),
	C("remote-backend snat entry",     PEER_BE, VIP,       6443, 10240, 6,  0,   10, 0,      0,          0,         0, false),
	C("UDP, same ports",               NODE,    CLIENT,    6443, 40000, 17, 0,   10, 0,      0,          0,         0, false),
	C("first fragment (MF)",           NODE,    CLIENT,    6443, 40000, 6,  0,   10, 0x2000, 0,          0,         0, false),
	C("non-first fragment",            NODE,    CLIENT,    6443, 40000, 6,  0,   10, 0x0010, 0,          0,         0, false),
	C("IPv6 ethertype",                NODE,    CLIENT,    6443, 40000, 6,  0,   10, 0,      ETH_P_IPV6, 0,         0, false),
	/* (a frame shorter than Ethernet + 20 bytes of IPv4 cannot be fed:
	 * BPF_PROG_TEST_RUN itself refuses it with -EINVAL) */
	C("no TCP header at all",          NODE,    CLIENT,    6443, 40000, 6,  0,    0, 0,      0,          14 + 20,   0, false),
	C("truncated TCP, ports only",     NODE,    CLIENT,    6443, 40000, 6,  0,    0, 0,      0,          14 + 20 + 4, 0, false),
	C("truncated TCP, no checksum",    NODE,    CLIENT,    6443, 40000, 6,  0,    0, 0,      0,          14 + 20 + 16, 0, false),
	C("options past the frame",        NODE,    CLIENT,    6443, 40000, 6, 40,    0, 0,      0,          14 + 40,   0, false),
	C("IHL 4",                         NODE,    CLIENT,    6443, 40000, 6,  0,   10, 0,      0,          0,         4, false),
	C("IHL 15 > tot_len",              NODE,    CLIENT,    6443, 40000, 6,  0,    0, 0,      0,          0,        15, false),
};

static void test_tc_table(void)
{
	uint64_t vip0 = percpu_packets(dp->maps.vip_stats, 3);
	uint64_t be0 = percpu_packets(dp->maps.backend_stats, 7);
	int fd = bpf_program__fd(dp->progs.tc_egress), matched = 0;
	size_t i;

	for (i = 0; i < sizeof(tc_cases) / sizeof(tc_cases[0]); i++) {
		const struct tc_case *c = &tc_cases[i];
		static uint8_t in[2048], want[2048], out[2048];
		size_t in_len = build(in, &c->in), want_len;
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in,
			    .data_size_in = in_len, .data_out = out,
			    .data_size_out = sizeof(out), .repeat = 1);
		int err;

		if (c->rewritten) {
			struct spec w = c->in;

			w.saddr = VIP;
			w.sport = 8443;
			want_len = build(want, &w);
			matched++;
		} else {
			memcpy(want, in, in_len);
			want_len = in_len;
		}
		memset(out, 0, sizeof(out));
		err = bpf_prog_test_run_opts(fd, &o);
		if (err || o.retval != TC_ACT_OK || o.data_size_out != want_len ||
		    memcmp(out, want, want_len))
			fprintf(stderr, "\n  case '%s': err %d retval %u len %u/%zu %s\n",
				c->in.name, err, o.retval, o.data_size_out,
				want_len,
				o.data_size_out == want_len &&
						memcmp(out, want, want_len) ?
					"bytes differ" : "");
		CU_ASSERT_EQUAL(err, 0);
		CU_ASSERT_EQUAL(o.retval, TC_ACT_OK);
		CU_ASSERT_EQUAL(o.data_size_out, want_len);
		CU_ASSERT(!memcmp(out, want, want_len));
	}
	/* replies are counted against their VIP and backend */
	CU_ASSERT_EQUAL(percpu_packets(dp->maps.vip_stats, 3), vip0 + matched);
	CU_ASSERT_EQUAL(percpu_packets(dp->maps.backend_stats, 7), be0 + matched);
}

/* The rewritten frame verifies as a receiver would: both sums fold to 0. */
static void test_tc_receiver_view(void)
{
	struct spec s = { .name = "verify", .saddr = NODE, .daddr = CLIENT,
			  .sport = 6443, .dport = 40000, .proto = 6,
			  .opt_len = 8, .payload = 777 };
	static uint8_t in[2048], out[2048];
	size_t len = build(in, &s);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	uint8_t *ip = out + 14, *th;
	size_t ihl, l4;
	uint32_t sum;

	CU_ASSERT_FATAL(!bpf_prog_test_run_opts(bpf_program__fd(dp->progs.tc_egress), &o));
	ihl = (ip[0] & 0xf) * 4;
	l4 = ((size_t)ip[2] << 8 | ip[3]) - ihl;
	th = ip + ihl;
	CU_ASSERT_EQUAL(csum_fold32(csum_add_bytes(0, ip, ihl)), 0);
	sum = csum_add_bytes(0, ip + 12, 8) + 6 + l4;
	CU_ASSERT_EQUAL(csum_fold32(csum_add_bytes(sum, th, l4)), 0);
	CU_ASSERT_EQUAL(th[0] << 8 | th[1], 8443);
	CU_ASSERT(!memcmp(ip + 12, "\x0a\x00\x00\x64", 4));
}

/* ---- helpers for the live suites -------------------------------------- */

static int orig_netns = -1;
static char pin_dir[128], cg_dir[320], cg_orig[1024];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	return r == -1 ? -1 : WEXITSTATUS(r);
}

/* a private netns for the whole process, once, with lo up */
static int enter_private_netns(void)
{
	if (orig_netns >= 0)
		return 0;
	orig_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig_netns < 0 || unshare(CLONE_NEWNET))
		return -1;
	return sh("ip link set lo up");
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = write(fd, s, strlen(s)) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int cgroup_enter(void)
{
	char root[256], buf[64], line[512];
	FILE *f;

	if (kha_local_cgroup2_root(root, sizeof(root)))
		return -1;
	/* where we are now ("0::/path"), to go back there at the end */
	snprintf(cg_orig, sizeof(cg_orig), "%s", root);
	f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(cg_orig, sizeof(cg_orig), "%s%s", root, line + 3);
		}
	if (f)
		fclose(f);
	snprintf(cg_dir, sizeof(cg_dir), "%s/lc-test-%d", root, getpid());
	if (mkdir(cg_dir, 0755) && errno != EEXIST)
		return -1;
	snprintf(line, sizeof(line), "%s/cgroup.procs", cg_dir);
	snprintf(buf, sizeof(buf), "%d", getpid());
	return write_str(line, buf);
}

static void cgroup_leave(void)
{
	char path[1100], buf[64];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_orig);
	snprintf(buf, sizeof(buf), "%d", getpid());
	write_str(path, buf);
	rmdir(cg_dir);
}

/* ---- tc_attach -------------------------------------------------------- */

static struct kha_local_opts tc_o;

static int tc_att_init(void)
{
	if (enter_private_netns() || dp_open())
		return -1;
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/lc-test-%d", getpid());
	if (dp_pin(pin_dir))
		return -1;
	tc_o = (struct kha_local_opts){ .ifname = "lct0", .pin_dir = pin_dir,
					.tc = true };
	return sh("ip link add lct0 type veth peer name lct1 && ip link set lct0 up && ip link set lct1 up");
}

static int tc_att_cleanup(void)
{
	kha_local_detach(&tc_o);
	sh("ip link del lct0 2>/dev/null");
	dp_unpin(pin_dir);
	dp_close();
	return 0;
}

static bool has_clsact(void)
{
	return sh("tc qdisc show dev lct0 | grep -q clsact") == 0;
}

static bool filter_at(uint32_t handle, uint32_t prio, bool ingress)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = if_nametoindex("lct0"),
			    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = handle, .priority = prio);

	return bpf_tc_query(&h, &q) == 0;
}

/* somebody else's program: same type, another name */
static int foreign_prog(void)
{
	struct bpf_insn insns[] = {
		{ .code = 0xb7, .dst_reg = 0, .imm = 0 }, /* r0 = 0 */
		{ .code = 0x95 },                         /* exit */
	};
	LIBBPF_OPTS(bpf_prog_load_opts, po);

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "someone_else", "GPL",
			     insns, 2, &po);
}

static void test_tc_we_create_clsact(void)
{
	CU_ASSERT_FATAL(!has_clsact());
	CU_ASSERT_EQUAL_FATAL(kha_local_attach(&tc_o), 0);
	CU_ASSERT(has_clsact());
	CU_ASSERT(filter_at(KHA_TC_HANDLE, KHA_TC_PRIO, false));
	CU_ASSERT_EQUAL(kha_local_tc_attached(&tc_o), 1);
	/* idempotent: a second attach replaces our filter, adds none */
	CU_ASSERT_EQUAL(kha_local_attach(&tc_o), 0);
	CU_ASSERT_EQUAL(sh("test $(tc filter show dev lct0 egress | grep -c 'handle 0x4b48') -eq 1"), 0);
	CU_ASSERT_EQUAL(kha_local_detach(&tc_o), 0);
	CU_ASSERT(!filter_at(KHA_TC_HANDLE, KHA_TC_PRIO, false));
	CU_ASSERT(!has_clsact()); /* ours, and empty: removed */
	CU_ASSERT_EQUAL(kha_local_tc_attached(&tc_o), 0);
	CU_ASSERT_EQUAL(sh("ls %s | grep -qE 'tc_state|prog_tc'", pin_dir), 1);
	/* detach twice is fine */
	CU_ASSERT_EQUAL(kha_local_detach(&tc_o), 0);
}

static void test_tc_others_filters_kept(void)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = if_nametoindex("lct0"),
			    .attach_point = BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, theirs, .handle = 1, .priority = 1);
	int pfd = foreign_prog();

	CU_ASSERT_FATAL(pfd >= 0);
	/* case 1: the user's clsact with the user's filter, before us */
	CU_ASSERT_FATAL(!bpf_tc_hook_create(&h));
	theirs.prog_fd = pfd;
	CU_ASSERT_FATAL(!bpf_tc_attach(&h, &theirs));
	CU_ASSERT_EQUAL_FATAL(kha_local_attach(&tc_o), 0);
	CU_ASSERT(filter_at(KHA_TC_HANDLE, KHA_TC_PRIO, false));
	CU_ASSERT_EQUAL(kha_local_detach(&tc_o), 0);
	CU_ASSERT(!filter_at(KHA_TC_HANDLE, KHA_TC_PRIO, false));
	CU_ASSERT(filter_at(1, 1, false));
	CU_ASSERT(has_clsact()); /* not ours */

	/* case 2: the user's clsact, now empty: still not ours to delete */
	theirs.prog_fd = 0;
	theirs.flags = 0;
	theirs.prog_id = 0;
	CU_ASSERT_FATAL(!bpf_tc_detach(&h, &theirs));
	CU_ASSERT_EQUAL_FATAL(kha_local_attach(&tc_o), 0);
	CU_ASSERT_EQUAL(kha_local_detach(&tc_o), 0);
	CU_ASSERT(has_clsact());
	sh("tc qdisc del dev lct0 clsact");

	/* case 3: we create clsact, someone adds an ingress filter later */
	CU_ASSERT_FATAL(!has_clsact());
	CU_ASSERT_EQUAL_FATAL(kha_local_attach(&tc_o), 0);
	h.attach_point = BPF_TC_INGRESS;
	theirs.prog_fd = pfd;
	theirs.prog_id = 0;
	CU_ASSERT_FATAL(!bpf_tc_attach(&h, &theirs));
	CU_ASSERT_EQUAL(kha_local_detach(&tc_o), 0);
	CU_ASSERT(!filter_at(KHA_TC_HANDLE, KHA_TC_PRIO, false));
	CU_ASSERT(filter_at(1, 1, true));
	CU_ASSERT(has_clsact()); /* in use: kept */
	sh("tc qdisc del dev lct0 clsact");

	/* case 4: a foreign program at our handle/prio is never replaced */
	h.attach_point = BPF_TC_EGRESS;
	CU_ASSERT_FATAL(!bpf_tc_hook_create(&h));
	theirs.handle = KHA_TC_HANDLE;
	theirs.priority = KHA_TC_PRIO;
	theirs.prog_id = 0; /* an output of the previous attach */
	CU_ASSERT_FATAL(!bpf_tc_attach(&h, &theirs));
	CU_ASSERT_EQUAL(kha_local_attach(&tc_o), -EBUSY);
	CU_ASSERT_EQUAL(kha_local_detach(&tc_o), 0);
	CU_ASSERT(filter_at(KHA_TC_HANDLE, KHA_TC_PRIO, false));
	CU_ASSERT_EQUAL(kha_local_tc_attached(&tc_o), 0);
	sh("tc qdisc del dev lct0 clsact");
	close(pfd);
}

/* ---- cgroup ----------------------------------------------------------- */

#define CG_VIP "10.99.0.100"
#define NBE 3
static const char *const be_addr[NBE] = { "127.0.0.2", "127.0.0.3", "127.0.0.4" };
static int be_lfd[NBE] = { -1, -1, -1 };
static int other_lfd = -1, vip_lfd = -1;
static struct kha_local_opts cg_o;
static uint32_t ring[RING];

static int listen_on(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;

	inet_pton(AF_INET, addr, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (void *)&sa, sizeof(sa)) || listen(fd, 16))
		return -1;
	return fd;
}

static void set_local_addr(const char *a)
{
	struct kha_lb_config cfg = { .ring_size = RING };
	uint32_t zero = 0;

	be32_of(a, &cfg.local_addr.v4);
	CU_ASSERT_FATAL(!bpf_map_update_elem(bpf_map__fd(dp->maps.lb_config),
					     &zero, &cfg, BPF_ANY));
}

/* publish `r` as generation `gen` of VIP 0, the other one garbage */
static void publish(const uint32_t *r, uint32_t gen)
{
	struct kha_vip_state st = { .active_gen = gen, .nr_healthy = NBE };
	int fd = bpf_map__fd(dp->maps.rings);
	uint32_t s, line, zero = 0;
	struct kha_ring_line l;

	/* two generations of RING slots: the lines that hold them */
	for (line = 0; line < KHA_RING_LINES_PER_SLOT * RING; line++) {
		for (s = 0; s < KHA_RING_LINE; s++) {
			uint32_t g = line * KHA_RING_LINE + s;
			uint32_t gen_of = g / RING % 2, slot = g % RING;

			l.id[s] = KHA_RING_NONE;
			if (g < kha_ring_index(1, 0, 0, RING) && gen_of == gen &&
			    r[slot] < KHA_MAX_BACKENDS)
				l.id[s] = r[slot];
		}
		CU_ASSERT_FATAL(!bpf_map_update_elem(fd, &line, &l, BPF_ANY));
	}
	CU_ASSERT_FATAL(!bpf_map_update_elem(bpf_map__fd(dp->maps.vip_state),
					     &zero, &st, BPF_ANY));
}

static int cg_init(void)
{
	struct maglev_backend mb[NBE] = {};
	struct kha_vip_key vk = { .proto = 6, .family = KHA_AF_INET };
	struct kha_vip vip = { .vip_id = 0, .flags = KHA_VIP_F_ACTIVE };
	uint32_t i;

	if (enter_private_netns() || dp_open())
		return -1;
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/lc-test-%d", getpid());
	if (dp_pin(pin_dir) || cgroup_enter())
		return -1;
	for (i = 0; i < NBE; i++) {
		struct kha_backend be = { .port = htons(6443),
					  .family = KHA_AF_INET,
					  .flags = KHA_BE_F_PRESENT | KHA_BE_F_HEALTHY,
					  .weight = 1 };

		be32_of(be_addr[i], &be.addr.v4);
		if (bpf_map_update_elem(bpf_map__fd(dp->maps.backends), &i, &be,
					BPF_ANY))
			return -1;
		mb[i].addr = be.addr;
		mb[i].port = 6443;
		mb[i].weight = 1;
		mb[i].id = i;
		be_lfd[i] = listen_on(be_addr[i], 6443);
		if (be_lfd[i] < 0)
			return -1;
	}
	if (maglev_build(mb, NBE, ring, RING))
		return -1;
	be32_of(CG_VIP, &vk.addr.v4);
	vk.port = htons(8443);
	if (bpf_map_update_elem(bpf_map__fd(dp->maps.vips), &vk, &vip, BPF_ANY))
		return -1;
	/* the VIP is also a local address here, with its own listener: a
	 * connect left alone lands there, which the tests can tell apart */
	if (sh("ip addr add %s/32 dev lo", CG_VIP))
		return -1;
	vip_lfd = listen_on(CG_VIP, 8443);
	other_lfd = listen_on("127.0.0.5", 6443);
	if (vip_lfd < 0 || other_lfd < 0)
		return -1;
	cg_o = (struct kha_local_opts){ .pin_dir = pin_dir,
					.cgroup_path = cg_dir, .cgroup = true };
	return 0;
}

static int cg_cleanup(void)
{
	int i;

	kha_local_detach(&cg_o);
	cgroup_leave();
	for (i = 0; i < NBE; i++)
		close(be_lfd[i]);
	close(vip_lfd);
	close(other_lfd);
	if (dp) {
		dp_unpin(pin_dir);
		dp_close();
	}
	return 0;
}

/* Which of the listeners (be 0..2, 3 = other, 4 = VIP) accepted; -1 none. */
static int accepted_by(int *afd)
{
	int fds[NBE + 2] = { be_lfd[0], be_lfd[1], be_lfd[2], other_lfd, vip_lfd };
	int i, tries;

	for (tries = 0; tries < 100; tries++) {
		for (i = 0; i < NBE + 2; i++) {
			int a = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);

			if (a >= 0) {
				*afd = a;
				return i;
			}
		}
		usleep(10000);
	}
	return -1;
}

struct conn_result {
	int err;         /* connect errno, 0 = connected */
	int server;      /* accepted_by() */
	char peer[32];   /* getpeername "a.b.c.d:port" */
	bool echoed;     /* bytes went both ways intact */
};

static struct conn_result conn(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct conn_result r = { .server = -1 };
	socklen_t len = sizeof(sa);
	char ip[INET_ADDRSTRLEN], msg[] = "kha-xdp local client", buf[64];
	int fd, afd = -1;

	inet_pton(AF_INET, addr, &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (void *)&sa, sizeof(sa))) {
		r.err = errno;
		close(fd);
		return r;
	}
	memset(&sa, 0, sizeof(sa));
	getpeername(fd, (void *)&sa, &len);
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	snprintf(r.peer, sizeof(r.peer), "%s:%u", ip, ntohs(sa.sin_port));
	r.server = accepted_by(&afd);
	if (afd >= 0) {
		ssize_t n;

		write(fd, msg, sizeof(msg));
		n = read(afd, buf, sizeof(buf));
		if (n == sizeof(msg) && !memcmp(buf, msg, n)) {
			write(afd, buf, n);
			r.echoed = read(fd, buf, sizeof(buf)) == n &&
				   !memcmp(buf, msg, n);
		}
		close(afd);
	}
	close(fd);
	return r;
}

static int predicted(const char *local_addr)
{
	struct kha_addr a = {};

	be32_of(local_addr, &a.v4);
	return (int)maglev_lookup(ring, RING, &a);
}

static void test_cg_not_attached(void)
{
	struct conn_result r;

	publish(ring, 1);
	set_local_addr("10.99.0.1");
	r = conn(CG_VIP, 8443);
	CU_ASSERT_EQUAL(r.err, 0);
	CU_ASSERT_EQUAL(r.server, NBE + 1); /* the VIP's own listener */
	CU_ASSERT_STRING_EQUAL(r.peer, CG_VIP ":8443");
}

static void test_cg_connect_predicted(void)
{
	struct conn_result r;
	int want = predicted("10.99.0.1"), i, n = 0;

	CU_ASSERT_EQUAL_FATAL(kha_local_attach(&cg_o), 0);
	CU_ASSERT_EQUAL(kha_local_cgroup_attached(&cg_o), 1);
	/* every connection of this node goes to the same, predicted one */
	for (i = 0; i < 5; i++) {
		r = conn(CG_VIP, 8443);
		CU_ASSERT_EQUAL(r.err, 0);
		CU_ASSERT_EQUAL(r.server, want);
		CU_ASSERT_STRING_EQUAL(r.peer, CG_VIP ":8443");
		CU_ASSERT(r.echoed);
		n += r.server == want;
	}
	CU_ASSERT_EQUAL(n, 5);
}

static void test_cg_keyed_by_node_addr(void)
{
	char a[32], b[32];
	int first = predicted("10.99.0.1"), i;
	struct conn_result r;

	/* another node address hashing elsewhere picks that backend */
	for (i = 2; i < 250; i++) {
		snprintf(a, sizeof(a), "10.99.0.%d", i);
		if (predicted(a) != first)
			break;
	}
	CU_ASSERT_FATAL(i < 250);
	set_local_addr(a);
	r = conn(CG_VIP, 8443);
	CU_ASSERT_EQUAL(r.server, predicted(a));
	CU_ASSERT_NOT_EQUAL(r.server, first);
	CU_ASSERT_STRING_EQUAL(r.peer, CG_VIP ":8443");
	CU_ASSERT(r.echoed);

	/* a new table generation (backend `first` alone) is used at once */
	{
		uint32_t only[RING];

		for (i = 0; i < RING; i++)
			only[i] = first;
		publish(only, 0);
		r = conn(CG_VIP, 8443);
		CU_ASSERT_EQUAL(r.server, first);
		CU_ASSERT_STRING_EQUAL(r.peer, CG_VIP ":8443");
		publish(ring, 1);
	}
	snprintf(b, sizeof(b), "10.99.0.1");
	set_local_addr(b);
}

static void test_cg_others_untouched(void)
{
	struct conn_result r;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(8443) };
	socklen_t len = sizeof(sa);
	char ip[INET_ADDRSTRLEN];
	int fd;

	/* another address */
	r = conn("127.0.0.5", 6443);
	CU_ASSERT_EQUAL(r.err, 0);
	CU_ASSERT_EQUAL(r.server, NBE);
	CU_ASSERT_STRING_EQUAL(r.peer, "127.0.0.5:6443");
	CU_ASSERT(r.echoed);
	/* a backend directly */
	r = conn(be_addr[2], 6443);
	CU_ASSERT_EQUAL(r.server, 2);
	CU_ASSERT_STRING_EQUAL(r.peer, "127.0.0.4:6443");
	/* the VIP on another port */
	r = conn(CG_VIP, 6443);
	CU_ASSERT_EQUAL(r.err, ECONNREFUSED);

	/* UDP to VIP:8443: connect4 runs for UDP too, must not redirect */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, CG_VIP, &sa.sin_addr);
	CU_ASSERT_EQUAL(connect(fd, (void *)&sa, sizeof(sa)), 0);
	memset(&sa, 0, sizeof(sa));
	getpeername(fd, (void *)&sa, &len);
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	CU_ASSERT_STRING_EQUAL(ip, CG_VIP);
	CU_ASSERT_EQUAL(ntohs(sa.sin_port), 8443);
	close(fd);
}

/*
 * Same cgroup, another network namespace (a process of some other lab node
 * or a pod): a fork that unshares its own netns with the same addresses and
 * listeners (it inherits the listening fds only to close them). Returns the
 * listener that accepted there, as accepted_by() numbers them, or a
 * negative code.
 */
static int other_netns_conn(void)
{
	pid_t pid = fork();
	int st, i;

	if (pid < 0)
		return -100;
	if (pid == 0) {
		struct conn_result r;

		if (unshare(CLONE_NEWNET) ||
		    sh("ip link set lo up && ip addr add %s/32 dev lo", CG_VIP))
			_exit(250);
		for (i = 0; i < NBE; i++) {
			close(be_lfd[i]);
			be_lfd[i] = listen_on(be_addr[i], 6443);
		}
		close(vip_lfd);
		close(other_lfd);
		vip_lfd = listen_on(CG_VIP, 8443);
		other_lfd = listen_on("127.0.0.5", 6443);
		r = conn(CG_VIP, 8443);
		if (r.err || !r.echoed || strcmp(r.peer, CG_VIP ":8443"))
			_exit(251);
		_exit(r.server);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -101;
	return WEXITSTATUS(st) >= 250 ? -WEXITSTATUS(st) : WEXITSTATUS(st);
}

static void test_cg_other_netns_untouched(void)
{
	/* there, a redirect would land on a 127.0.0.x listener */
	CU_ASSERT_EQUAL(other_netns_conn(), NBE + 1);
}

/* all_netns: the same hook now serves the other namespace too */
static void test_cg_all_netns(void)
{
	struct kha_local_opts o = cg_o;

	o.all_netns = true;
	CU_ASSERT_EQUAL_FATAL(kha_local_attach(&o), 0);
	CU_ASSERT_EQUAL(other_netns_conn(), predicted("10.99.0.1"));
	CU_ASSERT_EQUAL_FATAL(kha_local_attach(&cg_o), 0);
	CU_ASSERT_EQUAL(other_netns_conn(), NBE + 1);
}

static void test_cg_empty_table_left_alone(void)
{
	uint32_t none[RING];
	struct conn_result r;
	int i;

	for (i = 0; i < RING; i++)
		none[i] = KHA_NO_BACKEND;
	publish(none, 0);
	r = conn(CG_VIP, 8443);
	CU_ASSERT_EQUAL(r.err, 0);
	CU_ASSERT_EQUAL(r.server, NBE + 1);
	CU_ASSERT_STRING_EQUAL(r.peer, CG_VIP ":8443");

	/* unhealthy backend still in the table (before republication) */
	publish(ring, 1);
	{
		struct kha_backend be;
		uint32_t id = predicted("10.99.0.1");
		int fd = bpf_map__fd(dp->maps.backends);

		CU_ASSERT_FATAL(!bpf_map_lookup_elem(fd, &id, &be));
		be.flags &= ~KHA_BE_F_HEALTHY;
		CU_ASSERT_FATAL(!bpf_map_update_elem(fd, &id, &be, BPF_ANY));
		r = conn(CG_VIP, 8443);
		CU_ASSERT_EQUAL(r.server, NBE + 1);
		be.flags |= KHA_BE_F_HEALTHY;
		CU_ASSERT_FATAL(!bpf_map_update_elem(fd, &id, &be, BPF_ANY));
	}
	r = conn(CG_VIP, 8443);
	CU_ASSERT_EQUAL(r.server, predicted("10.99.0.1"));
}

static void test_cg_reattach_and_detach(void)
{
	struct conn_result r;
	char path[256];
	struct stat sb;

	/* a second attach (daemon restart) updates in place */
	CU_ASSERT_EQUAL(kha_local_attach(&cg_o), 0);
	r = conn(CG_VIP, 8443);
	CU_ASSERT_EQUAL(r.server, predicted("10.99.0.1"));
	CU_ASSERT_STRING_EQUAL(r.peer, CG_VIP ":8443");
	CU_ASSERT_EQUAL(sh("test $(bpftool cgroup show %s | grep -cE 'connect4|getpeername4') -eq 2", cg_dir), 0);

	CU_ASSERT_EQUAL(kha_local_detach(&cg_o), 0);
	CU_ASSERT_EQUAL(kha_local_cgroup_attached(&cg_o), 0);
	CU_ASSERT_EQUAL(sh("bpftool cgroup show %s | grep -qE 'connect4|getpeername4'", cg_dir), 1);
	snprintf(path, sizeof(path), "%s/link_connect4", pin_dir);
	CU_ASSERT(stat(path, &sb) && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/local_peer", pin_dir);
	CU_ASSERT(stat(path, &sb) && errno == ENOENT);
	r = conn(CG_VIP, 8443);
	CU_ASSERT_EQUAL(r.server, NBE + 1); /* untouched again */
	CU_ASSERT_EQUAL(kha_local_detach(&cg_o), 0);
}

static void test_cg_missing_maps(void)
{
	struct kha_local_opts o = { .pin_dir = "/sys/fs/bpf/lc-test-nonexistent",
				    .cgroup_path = cg_dir, .cgroup = true };

	CU_ASSERT_EQUAL(kha_local_attach(&o), -ENOENT);
	CU_ASSERT_EQUAL(kha_local_cgroup_attached(&o), 0);
}

static CU_TestInfo tc_pkt_tests[] = {
	{ "table of packets -> bytes", test_tc_table },
	{ "receiver verifies checksums", test_tc_receiver_view },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo tc_att_tests[] = {
	{ "we create clsact, we remove it", test_tc_we_create_clsact },
	{ "others' qdisc and filters kept", test_tc_others_filters_kept },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo cg_tests[] = {
	{ "not attached: VIP listener", test_cg_not_attached },
	{ "connect(VIP) -> predicted backend", test_cg_connect_predicted },
	{ "keyed by lb_config.local_addr", test_cg_keyed_by_node_addr },
	{ "other sockets untouched", test_cg_others_untouched },
	{ "other netns untouched", test_cg_other_netns_untouched },
	{ "all_netns: other netns served", test_cg_all_netns },
	{ "empty table / unhealthy: left alone", test_cg_empty_table_left_alone },
	{ "reattach, detach", test_cg_reattach_and_detach },
	{ "data plane not pinned", test_cg_missing_maps },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "tc_packets", tc_pkt_tests, tc_pkt_init, tc_pkt_cleanup },
	{ "tc_attach", tc_att_tests, tc_att_init, tc_att_cleanup },
	{ "cgroup", cg_tests, cg_init, cg_cleanup },
	{ 0 },
};

KHA_TEST_MAIN(suites)
