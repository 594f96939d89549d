// SPDX-License-Identifier: GPL-2.0
/*
 * kha-xdp: the command line. Every command is documented in docs/cli.md;
 * errors are one line on stderr and a non-zero exit.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/stat.h>
#include <bpf/bpf.h>

#include "config.h"
#include "ctl.h"
#include "daemon.h"
#include "local.h"
#include "log.h"
#include "maglev.h"
#include "maps.h"
#include "../headers/kha_hash.h"

static const char usage_text[] =
	"usage: kha-xdp COMMAND [options]\n"
	"\n"
	"  attach IFACE [--vip ADDR:PORT --backend ADDR:PORT [--backend ...]]...\n"
	"         [--snat-ports LO-HI] [--xdp-mode native|generic] [--ring-size N]\n"
	"         [--no-local] [-c FILE] [--pin-root DIR]\n"
	"  detach IFACE [--pin-root DIR]\n"
	"  check -c FILE\n"
	"  run [-c FILE] [--pin-root DIR] [--ctl-socket PATH]\n"
	"      [--on-exit auto|stop|keep]\n"
	"  status [IFACE] [--json] [-c FILE] [--pin-root DIR] [--ctl-socket PATH]\n"
	"  backend drain|enable ADDR:PORT [-c FILE] [--ctl-socket PATH]\n"
	"  which CLIENT-ADDR [IFACE] [-c FILE] [--pin-root DIR]\n"
	"\n"
	"common: -v/--verbose (debug log), -h/--help\n"
	"See docs/cli.md.\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("kha-xdp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

enum {
	OPT_VIP = 256,
	OPT_BACKEND,
	OPT_SNAT,
	OPT_MODE,
	OPT_PIN_ROOT,
	OPT_RING,
	OPT_JSON,
	OPT_CTL,
	OPT_ON_EXIT,
	OPT_NO_LOCAL,
};

static const struct option long_opts[] = {
	{ "vip", required_argument, NULL, OPT_VIP },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "snat-ports", required_argument, NULL, OPT_SNAT },
	{ "xdp-mode", required_argument, NULL, OPT_MODE },
	{ "pin-root", required_argument, NULL, OPT_PIN_ROOT },
	{ "ring-size", required_argument, NULL, OPT_RING },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "ctl-socket", required_argument, NULL, OPT_CTL },
	{ "on-exit", required_argument, NULL, OPT_ON_EXIT },
	{ "keep-dataplane-on-exit", no_argument, NULL, 'k' },
	{ "no-local", no_argument, NULL, OPT_NO_LOCAL },
	{ "config", required_argument, NULL, 'c' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

struct cli {
	const char *cmd;
	const char *conf;
	bool conf_given;
	const char *pin_root;
	const char *ctl;
	bool json;
	bool generic, mode_given;
	bool no_local;
	bool verbose;
	uint32_t ring_size;
	uint16_t snat_lo, snat_hi;
	enum kha_exit_mode exit_mode;
	int nargs;
	char *args[4];
	/* --vip / --backend, in order */
	struct kha_config *cfg;
	bool have_vips;
};

/* "ADDR:PORT" -> sin; 0 or -EINVAL */
static int parse_addr_port(const char *s, struct sockaddr_in *sin)
{
	char buf[64], *colon, *end;
	unsigned long port;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || errno || port < 1 || port > 65535)
		return -EINVAL;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || end == s || errno || v > UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

static int add_vip(struct cli *c, const char *arg)
{
	struct kha_vip_conf *v;

	if (c->cfg->nr_vips >= KHA_MAX_VIPS)
		return fail("--vip %s: at most %d VIPs", arg, KHA_MAX_VIPS);
	v = &c->cfg->vips[c->cfg->nr_vips];
	memset(v, 0, sizeof(*v));
	if (parse_addr_port(arg, &v->addr))
		return fail("--vip %s: bad address, expected IPV4:PORT", arg);
	v->check.type = KHA_CHECK_NONE;
	c->cfg->nr_vips++;
	c->have_vips = true;
	return 0;
}

static int add_backend(struct cli *c, const char *arg)
{
	struct kha_vip_conf *v;
	struct kha_backend_conf *b;
	int i;

	if (!c->cfg->nr_vips)
		return fail("--backend %s: give --vip first", arg);
	v = &c->cfg->vips[c->cfg->nr_vips - 1];
	if (v->nr_backends >= KHA_MAX_BACKENDS)
		return fail("--backend %s: at most %d backends", arg,
			    KHA_MAX_BACKENDS);
	b = &v->backends[v->nr_backends];
	memset(b, 0, sizeof(*b));
	if (parse_addr_port(arg, &b->addr))
		return fail("--backend %s: bad address, expected IPV4:PORT",
			    arg);
	for (i = 0; i < v->nr_backends; i++)
		if (v->backends[i].addr.sin_addr.s_addr ==
			    b->addr.sin_addr.s_addr &&
		    v->backends[i].addr.sin_port == b->addr.sin_port)
			return fail("--backend %s: given twice", arg);
	b->weight = 1;
	b->check.type = KHA_CHECK_NONE;
	v->nr_backends++;
	return 0;
}

static int parse_cli(int argc, char **argv, struct cli *c)
{
	int opt;

	optind = 2;
	while ((opt = getopt_long(argc, argv, "c:vhk", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			c->conf = optarg;
			c->conf_given = true;
			break;
		case 'v':
			kha_log_init(KHA_LOG_DEBUG);
			c->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'k':
			c->exit_mode = KHA_EXIT_KEEP;
			break;
		case OPT_VIP:
			if (add_vip(c, optarg))
				return 1;
			break;
		case OPT_BACKEND:
			if (add_backend(c, optarg))
				return 1;
			break;
		case OPT_SNAT: {
			unsigned int lo, hi;
			char tail;

			if (sscanf(optarg, "%u-%u%c", &lo, &hi, &tail) != 2 ||
			    lo < 1 || hi > 65535 || lo > hi)
				return fail("--snat-ports %s: expected LO-HI with 1 <= LO <= HI <= 65535",
					    optarg);
			c->snat_lo = lo;
			c->snat_hi = hi;
			break;
		}
		case OPT_MODE:
			if (!strcmp(optarg, "native"))
				c->generic = false;
			else if (!strcmp(optarg, "generic") ||
				 !strcmp(optarg, "skb"))
				c->generic = true;
			else
				return fail("--xdp-mode %s: expected native or generic",
					    optarg);
			c->mode_given = true;
			break;
		case OPT_PIN_ROOT:
			if (strlen(optarg) >= KHA_DP_ROOT_MAX - 1 ||
			    optarg[0] != '/')
				return fail("--pin-root %s: expected an absolute path shorter than %d",
					    optarg, KHA_DP_ROOT_MAX - 1);
			c->pin_root = optarg;
			break;
		case OPT_RING:
			if (parse_u32(optarg, &c->ring_size) ||
			    !maglev_size_ok(c->ring_size))
				return fail("--ring-size %s: expected a prime between 3 and %d",
					    optarg, KHA_RING_SIZE_MAX);
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_CTL:
			c->ctl = optarg;
			break;
		case OPT_NO_LOCAL:
			c->no_local = true;
			break;
		case OPT_ON_EXIT:
			if (!strcmp(optarg, "auto"))
				c->exit_mode = KHA_EXIT_AUTO;
			else if (!strcmp(optarg, "stop"))
				c->exit_mode = KHA_EXIT_STOP;
			else if (!strcmp(optarg, "keep"))
				c->exit_mode = KHA_EXIT_KEEP;
			else
				return fail("--on-exit %s: expected auto, stop or keep",
					    optarg);
			break;
		default:
			usage(stderr);
			return 1;
		}
	}
	for (; optind < argc; optind++) {
		if (c->nargs >= (int)(sizeof(c->args) / sizeof(c->args[0])))
			return fail("%s: too many arguments", c->cmd);
		c->args[c->nargs++] = argv[optind];
	}
	return 0;
}

static int load_config(const char *path, struct kha_config *cfg)
{
	char err[512];
	int ret = kha_config_load(path, cfg, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return 0;
}

static bool ifname_ok(const char *ifname)
{
	return ifname && *ifname && strlen(ifname) < IF_NAMESIZE &&
	       !strchr(ifname, '/');
}

/* ---- attach ---- */

static int cmd_attach(struct cli *c)
{
	struct kha_config *cfg = c->cfg;
	struct kha_dp_vip *vips = NULL;
	struct kha_dp dp;
	struct kha_dp_opts o = {};
	char err[512], buf[64];
	int n, i, j, ret;
	bool any_local = false;

	if (c->nargs != 1)
		return fail("attach: expected one interface (kha-xdp attach IFACE ...)");
	if (!ifname_ok(c->args[0]))
		return fail("interface %s: bad interface name", c->args[0]);
	if (!c->have_vips) {
		/* the VIPs and backends of the config file */
		struct kha_config *fc = calloc(1, sizeof(*fc));

		if (!fc)
			return fail("out of memory");
		if (load_config(c->conf, fc)) {
			free(fc);
			return 1;
		}
		if (!fc->nr_vips) {
			free(fc);
			return fail("attach: no --vip given and %s has no VIP",
				    c->conf);
		}
		*cfg = *fc;
		free(fc);
		if (strcmp(cfg->ifname, c->args[0]))
			log_warn("cli", "%s names interface %s; attaching to %s as asked",
				 c->conf, cfg->ifname, c->args[0]);
	} else {
		for (i = 0; i < cfg->nr_vips; i++)
			if (!cfg->vips[i].nr_backends) {
				char a[INET_ADDRSTRLEN];

				inet_ntop(AF_INET, &cfg->vips[i].addr.sin_addr,
					  a, sizeof(a));
				return fail("--vip %s:%u: no --backend given",
					    a, ntohs(cfg->vips[i].addr.sin_port));
			}
	}
	snprintf(cfg->ifname, sizeof(cfg->ifname), "%s", c->args[0]);
	if (c->pin_root)
		snprintf(cfg->pin_root, sizeof(cfg->pin_root), "%s",
			 c->pin_root);
	if (c->snat_lo) {
		cfg->snat_port_lo = c->snat_lo;
		cfg->snat_port_hi = c->snat_hi;
	}
	if (c->ring_size)
		cfg->ring_size = c->ring_size;
	if (c->mode_given)
		cfg->xdp_generic = c->generic;

	o.ifname = cfg->ifname;
	o.pin_root = cfg->pin_root;
	o.ring_size = cfg->ring_size;
	o.xdp_generic = cfg->xdp_generic;
	ret = kha_dp_load(&dp, &o, err, sizeof(err));
	if (ret)
		return fail("%s%s", err,
			    c->verbose || ret == -ENODEV || ret == -EEXIST ||
					    ret == -EBUSY ?
				    "" : " (-v shows libbpf's details)");

	vips = calloc(KHA_MAX_VIPS, sizeof(*vips));
	if (!vips) {
		ret = -ENOMEM;
		snprintf(err, sizeof(err), "out of memory");
		goto undo;
	}
	n = kha_dp_vips_from_config(cfg, vips);
	ret = kha_dp_set_lb_config(&dp, cfg->snat_port_lo, cfg->snat_port_hi,
				   kha_node_addr(cfg));
	if (!ret)
		ret = kha_dp_sync(&dp, vips, n);
	if (ret) {
		snprintf(err, sizeof(err), "filling the maps in %s: %s", dp.dir,
			 strerror(-ret));
		goto undo;
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < vips[i].nr_backends; j++)
			any_local |= vips[i].backends[j].local;
	if (!c->no_local && (any_local || cfg->local_clients)) {
		struct kha_local_opts lo = {
			.ifname = cfg->ifname,
			.pin_dir = dp.dir,
			.cgroup_path = cfg->cgroup,
			.tc = any_local,
			.cgroup = cfg->local_clients,
		};

		ret = kha_local_attach(&lo);
		if (ret) {
			snprintf(err, sizeof(err),
				 "attaching the local paths (tc egress, cgroup connect4) on %s: %s",
				 cfg->ifname, strerror(-ret));
			kha_local_detach(&lo);
			goto undo;
		}
	}
	for (i = 0; i < n; i++) {
		printf("vip %s: %d backends, %d in the table\n",
		       kha_addr_port_str(&vips[i].addr, vips[i].port, buf,
					 sizeof(buf)),
		       vips[i].nr_backends, vips[i].nr_in_ring);
	}
	printf("attached to %s (XDP program id %u, %s mode), pinned in %s\n",
	       dp.ifname, dp.prog_id, cfg->xdp_generic ? "generic" : "native",
	       dp.dir);
	free(vips);
	kha_dp_close(&dp); /* the pinned link keeps it attached */
	return 0;
undo:
	free(vips);
	kha_dp_destroy(&dp);
	return fail("%s", err);
}

/* ---- detach ---- */

static int cmd_detach(struct cli *c)
{
	const char *root = c->pin_root ? c->pin_root : KHA_PIN_ROOT_DEFAULT;
	char dir[KHA_DP_ROOT_MAX + IF_NAMESIZE + 2];
	struct kha_local_opts lo = {};
	struct stat st;
	int ret, lock;

	if (c->nargs != 1)
		return fail("detach: expected one interface (kha-xdp detach IFACE)");
	if (!ifname_ok(c->args[0]))
		return fail("interface %s: bad interface name", c->args[0]);
	snprintf(dir, sizeof(dir), "%s/%s", root, c->args[0]);
	if (stat(dir, &st))
		return fail("%s: kha-xdp is not attached (no %s)", c->args[0],
			    dir);
	lock = kha_dp_lock(c->args[0], root);
	if (lock == -EWOULDBLOCK)
		return fail("%s: a kha-xdp daemon runs on it; stop the daemon instead (systemctl stop kha-xdp)",
			    c->args[0]);
	if (lock >= 0)
		close(lock);
	lo.ifname = c->args[0];
	lo.pin_dir = dir;
	lo.tc = true;
	lo.cgroup = true;
	/* the local paths use the maps: they go first */
	ret = kha_local_detach(&lo);
	if (ret)
		log_warn("cli", "%s: detaching the local paths: %s", c->args[0],
			 strerror(-ret));
	ret = kha_dp_detach_pins(c->args[0], root);
	if (ret == -ENOENT)
		return fail("%s: kha-xdp is not attached (nothing pinned in %s)",
			    c->args[0], dir);
	if (!stat(dir, &st))
		return fail("%s: %s still holds pins kha-xdp does not know; left in place",
			    c->args[0], dir);
	printf("detached from %s, pins removed from %s\n", c->args[0], dir);
	return 0;
}

/* ---- check ---- */

static int cmd_check(struct cli *c)
{
	struct kha_config *cfg = c->cfg;
	int i, nb = 0;

	if (c->nargs)
		return fail("check: unexpected argument %s (use -c FILE)",
			    c->args[0]);
	if (load_config(c->conf, cfg))
		return 1;
	for (i = 0; i < cfg->nr_vips; i++)
		nb += cfg->vips[i].nr_backends;
	printf("%s: ok (interface %s, %d VIPs, %d backends, VRRP %s)\n",
	       c->conf, cfg->ifname, cfg->nr_vips, nb,
	       cfg->vrrp.enabled ? "on" : "off");
	return 0;
}

/* ---- status, backend ---- */

/* the config, if it loads; used for the interface, pin root and socket */
static bool try_config(struct cli *c)
{
	char err[512];

	if (kha_config_load(c->conf, c->cfg, err, sizeof(err))) {
		if (c->conf_given)
			fprintf(stderr, "%s\n", err);
		return false;
	}
	return true;
}

static const char *ctl_path(struct cli *c, bool have_cfg)
{
	if (c->ctl)
		return c->ctl;
	if (have_cfg && c->cfg->ctl_socket[0])
		return c->cfg->ctl_socket;
	return KHA_CTL_SOCK_DEFAULT;
}

static int status_from_maps(struct cli *c, const char *ifname,
			    const char *root)
{
	struct kha_status_ctx sc = { .source = "maps" };
	struct kha_dp dp;
	char err[512];
	int ret;

	ret = kha_dp_adopt(&dp, ifname, root, err, sizeof(err));
	if (ret && ret != -ENOLINK) {
		if (ret == -ENOENT)
			return fail("%s: kha-xdp is not attached and no daemon answers (nothing pinned in %s/%s)",
				    ifname, root, ifname);
		return fail("%s", err);
	}
	sc.dp = &dp;
	ret = kha_status_write(stdout, c->json, &sc);
	kha_dp_close(&dp);
	return ret ? 1 : 0;
}

static int cmd_status(struct cli *c)
{
	bool have_cfg = try_config(c);
	const char *root, *ifname = NULL;
	char *body = NULL;
	DIR *d;
	struct dirent *de;
	int ret, rc = 0, n = 0;

	if (c->conf_given && !have_cfg)
		return 1;
	if (c->nargs > 1)
		return fail("status: expected at most one interface");
	if (!c->nargs) {
		ret = kha_ctl_request(ctl_path(c, have_cfg),
				      c->json ? "status json" : "status", &body);
		if (ret >= 0) {
			fputs(body, ret ? stderr : stdout);
			free(body);
			return ret ? 1 : 0;
		}
		if (ret != -ENOENT && ret != -ECONNREFUSED)
			return fail("%s: %s", ctl_path(c, have_cfg),
				    strerror(-ret));
	}
	/* no daemon: the pinned maps */
	root = c->pin_root ? c->pin_root :
	       have_cfg ? c->cfg->pin_root : KHA_PIN_ROOT_DEFAULT;
	if (c->nargs)
		ifname = c->args[0];
	else if (have_cfg && c->cfg->ifname[0])
		ifname = c->cfg->ifname;
	if (ifname)
		return status_from_maps(c, ifname, root);
	d = opendir(root);
	if (!d)
		return fail("no daemon answers on %s and nothing is pinned in %s",
			    ctl_path(c, have_cfg), root);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		if (c->json && n)
			return fail("status --json: several interfaces are attached; name one");
		rc |= status_from_maps(c, de->d_name, root);
		n++;
	}
	closedir(d);
	if (!n)
		return fail("no daemon answers on %s and nothing is pinned in %s",
			    ctl_path(c, have_cfg), root);
	return rc;
}

static int cmd_backend(struct cli *c)
{
	struct sockaddr_in sin;
	bool have_cfg;
	char req[96], *body = NULL;
	int ret;

	if (c->nargs != 2 ||
	    (strcmp(c->args[0], "drain") && strcmp(c->args[0], "enable")))
		return fail("backend: expected drain|enable ADDR:PORT");
	if (parse_addr_port(c->args[1], &sin))
		return fail("backend %s: bad address, expected IPV4:PORT",
			    c->args[1]);
	have_cfg = try_config(c);
	if (c->conf_given && !have_cfg)
		return 1;
	snprintf(req, sizeof(req), "%s %s", c->args[0], c->args[1]);
	ret = kha_ctl_request(ctl_path(c, have_cfg), req, &body);
	if (ret < 0)
		return fail("no kha-xdp daemon answers on %s: %s",
			    ctl_path(c, have_cfg), strerror(-ret));
	fputs(body, ret ? stderr : stdout);
	free(body);
	return ret ? 1 : 0;
}

static int cmd_run(struct cli *c)
{
	struct kha_daemon_opts o = {
		.conf = c->conf,
		.pin_root = c->pin_root,
		.ctl_path = c->ctl,
		.exit_mode = c->exit_mode,
	};

	if (c->nargs)
		return fail("run: unexpected argument %s", c->args[0]);
	return kha_daemon_run(&o);
}

/* ---- which ---- */

/*
 * Which backend a new connection from CLIENT gets, read from the live
 * tables exactly as the XDP program reads them (slot from the client
 * address, active generation, backend id): the answer to haproxy users'
 * "where does `balance source` send this client?".
 */
static int which_on(const char *ifname, const char *root, struct in_addr client)
{
	struct kha_dp_view_vip *vv;
	struct kha_lb_config lc = {};
	struct kha_addr ca = { .v4 = client.s_addr };
	char err[512], va[64], ba[64], cs[INET_ADDRSTRLEN];
	struct kha_dp dp;
	int n = 0, i, j, ret;

	ret = kha_dp_adopt(&dp, ifname, root, err, sizeof(err));
	if (ret && ret != -ENOLINK) {
		if (ret == -ENOENT)
			return fail("%s: kha-xdp is not attached (nothing pinned in %s/%s)",
				    ifname, root, ifname);
		return fail("%s", err);
	}
	vv = calloc(KHA_MAX_VIPS, sizeof(*vv));
	if (!vv || kha_dp_get_lb_config(&dp, &lc) ||
	    kha_dp_read_view(&dp, vv, KHA_MAX_VIPS, &n)) {
		free(vv);
		kha_dp_close(&dp);
		return fail("%s: cannot read the maps in %s", ifname, dp.dir);
	}
	inet_ntop(AF_INET, &client, cs, sizeof(cs));
	for (i = 0; i < n; i++) {
		uint32_t slot = kha_slot_of(&ca, lc.ring_size);
		uint32_t idx = kha_ring_index(vv[i].vip.vip_id,
					      vv[i].state.active_gen & 1, slot,
					      lc.ring_size);
		uint32_t id;
		const struct kha_backend *be = NULL;

		kha_addr_port_str(&vv[i].key.addr, ntohs(vv[i].key.port), va,
				  sizeof(va));
		id = kha_dp_ring_get(&dp, idx);
		for (j = 0; j < vv[i].nr_backends; j++)
			if (vv[i].backends[j].id == id)
				be = &vv[i].backends[j].be;
		if (!be) {
			printf("vip %s: client %s -> no backend (empty table: connections are refused)\n",
			       va, cs);
			continue;
		}
		printf("vip %s: client %s -> backend %s (id %u, slot %u, generation %u)\n",
		       va, cs, kha_addr_port_str(&be->addr, ntohs(be->port), ba,
						 sizeof(ba)),
		       id, slot, vv[i].state.active_gen & 1);
	}
	free(vv);
	kha_dp_close(&dp);
	return 0;
}

static int cmd_which(struct cli *c)
{
	bool have_cfg = try_config(c);
	const char *root, *ifname;
	struct in_addr client;

	if (c->conf_given && !have_cfg)
		return 1;
	if (c->nargs < 1 || c->nargs > 2)
		return fail("which: expected a client address and optionally an interface (kha-xdp which 10.0.0.7 eth0)");
	if (inet_pton(AF_INET, c->args[0], &client) != 1)
		return fail("which: %s: not an IPv4 address", c->args[0]);
	root = c->pin_root ? c->pin_root :
	       have_cfg ? c->cfg->pin_root : KHA_PIN_ROOT_DEFAULT;
	ifname = c->nargs == 2 ? c->args[1] :
		 have_cfg && c->cfg->ifname[0] ? c->cfg->ifname : NULL;
	if (!ifname)
		return fail("which: name the interface (no config file says which)");
	return which_on(ifname, root, client);
}

int main(int argc, char **argv)
{
	struct cli c = { .conf = KHA_CONF_DEFAULT };
	int ret;

	kha_log_init(KHA_LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	c.cmd = argv[1];
	if (!strcmp(c.cmd, "-h") || !strcmp(c.cmd, "--help") ||
	    !strcmp(c.cmd, "help")) {
		usage(stdout);
		return 0;
	}
	c.cfg = calloc(1, sizeof(*c.cfg));
	if (!c.cfg)
		return fail("out of memory");
	kha_config_defaults(c.cfg);
	if (parse_cli(argc, argv, &c)) {
		free(c.cfg);
		return 2;
	}
	/*
	 * A command's error is one line; libbpf's own warnings (verifier
	 * log, netlink extack) come with -v. The daemon keeps them in its log.
	 */
	if (strcmp(c.cmd, "run"))
		kha_log_quiet_libbpf(!c.verbose);
	if (!strcmp(c.cmd, "attach"))
		ret = cmd_attach(&c);
	else if (!strcmp(c.cmd, "detach"))
		ret = cmd_detach(&c);
	else if (!strcmp(c.cmd, "check"))
		ret = cmd_check(&c);
	else if (!strcmp(c.cmd, "run"))
		ret = cmd_run(&c);
	else if (!strcmp(c.cmd, "status"))
		ret = cmd_status(&c);
	else if (!strcmp(c.cmd, "backend"))
		ret = cmd_backend(&c);
	else if (!strcmp(c.cmd, "which"))
		ret = cmd_which(&c);
	else {
		fail("%s: unknown command", c.cmd);
		usage(stderr);
		ret = 2;
	}
	free(c.cfg);
	return ret;
}
