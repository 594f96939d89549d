// SPDX-License-Identifier: GPL-2.0
/*
 * The data plane object: load or adopt the pinned XDP program and maps,
 * keep VIPs, backends and Maglev tables true, read counters.
 *
 * Why the link is created with bpf_link_create() and pinned by hand rather
 * than through bpf_program__attach_xdp(): libbpf 1.1's helper takes no
 * flags, and generic (SKB) mode needs XDP_FLAGS_SKB_MODE. The pinned link
 * is what keeps the program on the interface after this process exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "maps.h"
#include "flows.h"
#include "maglev.h"
#include "log.h"
#include "config.h"
#include "xdp_lb.skel.h"

static const char *const map_names[KHA_MAP__MAX] = {
	[KHA_MAP_VIPS] = "vips",
	[KHA_MAP_VIP_STATE] = "vip_state",
	[KHA_MAP_RINGS] = "rings",
	[KHA_MAP_BACKENDS] = "backends",
	[KHA_MAP_CONNTRACK] = "conntrack",
	[KHA_MAP_SNAT] = "snat",
	[KHA_MAP_VIP_STATS] = "vip_stats",
	[KHA_MAP_BACKEND_STATS] = "backend_stats",
	[KHA_MAP_REASONS] = "reasons",
	[KHA_MAP_LB_CONFIG] = "lb_config",
	[KHA_MAP_SNAT_TW] = "snat_tw",
	[KHA_MAP_SNAT_CURSOR] = "snat_cursor",
	[KHA_MAP_CT_SYN] = "ct_syn",
};

/* value sizes this build expects; a pinned map that differs is foreign */
static const uint32_t map_value_size[KHA_MAP__MAX] = {
	[KHA_MAP_VIPS] = sizeof(struct kha_vip),
	[KHA_MAP_VIP_STATE] = sizeof(struct kha_vip_state),
	[KHA_MAP_RINGS] = sizeof(struct kha_ring_line),
	[KHA_MAP_BACKENDS] = sizeof(struct kha_backend),
	[KHA_MAP_CONNTRACK] = sizeof(struct kha_ct_slot),
	[KHA_MAP_SNAT] = sizeof(struct kha_snat_slot),
	[KHA_MAP_VIP_STATS] = sizeof(struct kha_counters),
	[KHA_MAP_BACKEND_STATS] = sizeof(struct kha_counters),
	[KHA_MAP_REASONS] = sizeof(struct kha_reasons),
	[KHA_MAP_LB_CONFIG] = sizeof(struct kha_lb_config),
	[KHA_MAP_SNAT_TW] = sizeof(struct kha_snat_tw),
	[KHA_MAP_SNAT_CURSOR] = sizeof(__u32),
	[KHA_MAP_CT_SYN] = sizeof(struct kha_ct_syn_line),
};

static const char *const reason_names[] = {
#define KHA_X_NAME(name) #name,
	KHA_REASONS(KHA_X_NAME)
#undef KHA_X_NAME
};

const char *kha_map_name(enum kha_map_id m)
{
	return m < KHA_MAP__MAX ? map_names[m] : NULL;
}

const char *kha_reason_name(unsigned int i)
{
	return i < KHA_R_MAX ? reason_names[i] : NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

const char *kha_addr_port_str(const struct kha_addr *a, uint16_t port,
			      char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->v4, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, port);
	return buf;
}

bool kha_addr_is_local(const struct kha_addr *a)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa))
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		found = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
			a->v4;
	}
	freeifaddrs(ifa);
	return found;
}

static void pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	char *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static void dp_init(struct kha_dp *dp, const char *ifname,
		    const char *pin_root)
{
	int i;

	memset(dp, 0, sizeof(*dp));
	for (i = 0; i < KHA_MAP__MAX; i++)
		dp->fds[i] = -1;
	dp->link_fd = -1;
	snprintf(dp->ifname, sizeof(dp->ifname), "%s", ifname);
	snprintf(dp->pin_root, sizeof(dp->pin_root), "%s",
		 pin_root && *pin_root ? pin_root : KHA_PIN_ROOT_DEFAULT);
	snprintf(dp->dir, sizeof(dp->dir), "%s/%s", dp->pin_root, ifname);
}

/*
 * `rings` holds struct kha_ring_line values (32 __u16 ids, 64 bytes: a
 * multiple of 8, so the array's elements are contiguous): its mmap is one
 * flat __u16 array, slot g = kha_ring_index() at rings[g].
 */
static uint16_t *ring_slot0(const struct kha_dp *dp, uint32_t vip_id,
			    uint32_t gen)
{
	return dp->rings + kha_ring_index(vip_id, gen & 1, 0, dp->ring_size);
}

static int map_rings(struct kha_dp *dp)
{
	size_t len = (size_t)KHA_RING_LINES_PER_SLOT * dp->ring_size *
		     sizeof(struct kha_ring_line);
	long pg = sysconf(_SC_PAGESIZE);
	void *m;

	len = (len + pg - 1) / pg * pg;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 dp->fds[KHA_MAP_RINGS], 0);
	if (m == MAP_FAILED)
		return -errno;
	dp->rings = m;
	dp->rings_len = len;
	dp->scratch = calloc(dp->ring_size, sizeof(__u32));
	return dp->scratch ? 0 : -ENOMEM;
}

/* user space's Maglev ids (__u32) <-> the published __u16 slots */
static uint16_t ring_id16(uint32_t id)
{
	return id < KHA_MAX_BACKENDS ? (uint16_t)id : KHA_RING_NONE;
}

static uint32_t ring_id32(uint16_t id)
{
	return id < KHA_MAX_BACKENDS ? id : KHA_NO_BACKEND;
}

void kha_dp_close(struct kha_dp *dp)
{
	int i;

	if (dp->rings)
		munmap(dp->rings, dp->rings_len);
	dp->rings = NULL;
	free(dp->scratch);
	dp->scratch = NULL;
	if (dp->link_fd >= 0)
		close(dp->link_fd);
	dp->link_fd = -1;
	for (i = 0; i < KHA_MAP__MAX; i++) {
		if (dp->fds[i] >= 0)
			close(dp->fds[i]);
		dp->fds[i] = -1;
	}
}

static int xdp_query(int ifindex, __u32 *prog_id, __u8 *mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int err = bpf_xdp_query(ifindex, 0, &q);

	if (err)
		return err;
	*prog_id = q.prog_id ? q.prog_id :
		   q.drv_prog_id ? q.drv_prog_id :
		   q.skb_prog_id ? q.skb_prog_id : q.hw_prog_id;
	*mode = q.attach_mode;
	return 0;
}

static void prog_name_by_id(__u32 id, char *buf, size_t len)
{
	struct bpf_prog_info info = {};
	__u32 ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	snprintf(buf, len, "?");
	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &ilen))
		snprintf(buf, len, "%s", info.name);
	close(fd);
}

static struct bpf_program *xdp_prog_of(struct xdp_lb *skel)
{
	struct bpf_program *p;

	/* the XDP engineer names the function; take the one XDP program */
	bpf_object__for_each_program(p, skel->obj)
		if (bpf_program__type(p) == BPF_PROG_TYPE_XDP)
			return p;
	return NULL;
}

/*
 * Open and load the skeleton. With reuse, the maps are dp->fds (adopted);
 * otherwise they are created and pinned under dp->dir by libbpf.
 */
static int load_skel(struct kha_dp *dp, bool reuse, struct xdp_lb **out,
		     char *err, size_t errlen)
{
	struct xdp_lb *skel;
	char path[PATH_MAX];
	int i, ret;

	skel = xdp_lb__open();
	if (!skel) {
		ret = -errno;
		snprintf(err, errlen, "opening the XDP object: %s",
			 strerror(-ret));
		return ret;
	}
	for (i = 0; i < KHA_MAP__MAX; i++) {
		struct bpf_map *m =
			bpf_object__find_map_by_name(skel->obj, map_names[i]);

		if (!m) {
			snprintf(err, errlen, "XDP object has no map %s",
				 map_names[i]);
			ret = -ENOENT;
			goto fail;
		}
		if (i == KHA_MAP_RINGS)
			bpf_map__set_max_entries(m, KHA_RING_LINES_PER_SLOT *
							    dp->ring_size);
		if (reuse) {
			ret = bpf_map__reuse_fd(m, dp->fds[i]);
		} else {
			pin_path(path, sizeof(path), dp->dir, map_names[i]);
			ret = bpf_map__set_pin_path(m, path);
		}
		if (ret) {
			snprintf(err, errlen, "map %s: %s", map_names[i],
				 strerror(-ret));
			goto fail;
		}
	}
	ret = xdp_lb__load(skel);
	if (ret) {
		if (ret == -EPERM || ret == -EACCES)
			snprintf(err, errlen,
				 "loading the XDP program: %s (needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON)",
				 strerror(-ret));
		else
			snprintf(err, errlen, "loading the XDP program: %s",
				 strerror(-ret));
		goto fail;
	}
	if (!reuse) {
		/* our own copies: the skeleton goes once the link exists */
		for (i = 0; i < KHA_MAP__MAX; i++)
			dp->fds[i] = fcntl(bpf_map__fd(bpf_object__find_map_by_name(
						   skel->obj, map_names[i])),
					   F_DUPFD_CLOEXEC, 3);
	}
	*out = skel;
	return 0;
fail:
	xdp_lb__destroy(skel);
	return ret;
}

/* Attach dp->skel's program to dp->ifindex through a link pinned in dir. */
static int attach_link(struct kha_dp *dp, struct xdp_lb *skel, bool generic,
		       char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo);
	struct bpf_program *prog = xdp_prog_of(skel);
	char path[PATH_MAX];
	struct bpf_prog_info info = {};
	__u32 ilen = sizeof(info);
	int fd, ret;

	if (!prog) {
		snprintf(err, errlen, "XDP object has no XDP program");
		return -ENOENT;
	}
	lo.flags = generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	fd = bpf_link_create(bpf_program__fd(prog), dp->ifindex, BPF_XDP, &lo);
	if (fd < 0) {
		ret = fd;
		if (ret == -EBUSY || ret == -EEXIST)
			snprintf(err, errlen,
				 "interface %s: another XDP program is already attached",
				 dp->ifname);
		else if (ret == -EOPNOTSUPP || ret == -EINVAL)
			snprintf(err, errlen,
				 "interface %s: %s XDP attach failed: %s%s",
				 dp->ifname, generic ? "generic" : "native",
				 strerror(-ret),
				 generic ? "" : " (try --xdp-mode generic)");
		else
			snprintf(err, errlen,
				 "interface %s: attaching XDP: %s", dp->ifname,
				 strerror(-ret));
		return ret;
	}
	pin_path(path, sizeof(path), dp->dir, KHA_LINK_XDP_PIN);
	unlink(path); /* a stale pin of a defunct link */
	if (bpf_obj_pin(fd, path)) {
		ret = -errno;
		snprintf(err, errlen, "pinning %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	dp->link_fd = fd;
	dp->xdp_generic = generic;
	if (!bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &ilen))
		dp->prog_id = info.id;
	return 0;
}

static void unpin_all(const char *dir)
{
	char path[PATH_MAX];
	int i;

	pin_path(path, sizeof(path), dir, KHA_LINK_XDP_PIN);
	unlink(path);
	for (i = 0; i < KHA_MAP__MAX; i++) {
		pin_path(path, sizeof(path), dir, map_names[i]);
		unlink(path);
	}
}

static void rmdirs(const char *dir, const char *root)
{
	/* only when empty: other pins (tc, cgroup links) stay with their dir */
	rmdir(dir);
	rmdir(root);
}

static int write_default_lb_config(struct kha_dp *dp)
{
	struct kha_lb_config c = {
		.snat_port_lo = KHA_SNAT_PORT_LO_DEFAULT,
		.snat_port_hi = KHA_SNAT_PORT_HI_DEFAULT,
		.ring_size = dp->ring_size,
	};
	__u32 zero = 0;

	return bpf_map_update_elem(dp->fds[KHA_MAP_LB_CONFIG], &zero, &c, 0) ?
		       -errno : 0;
}

/*
 * The kernel must be able to finish what XDP hands it: a translated packet
 * whose next hop is not resolved yet is passed up with the VIP (a local
 * address) as its source, and the stack forwards it (resolving the
 * neighbour) only with forwarding and accept_local on; a redirect for it
 * would be nonsense. Per interface, so nothing else on the node changes.
 * Left as they are on detach: see docs/operations.md.
 */
static int set_if_sysctls(const char *ifname)
{
	static const struct {
		const char *name;
		char want;
	} knobs[] = {
		{ "forwarding", '1' },
		{ "accept_local", '1' },
		{ "send_redirects", '0' },
	};
	char path[128], cur;
	unsigned int i;
	int fd, ret = 0;

	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/%s",
			 ifname, knobs[i].name);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0 || pread(fd, &cur, 1, 0) != 1) {
			ret = -errno;
			log_warn("maps", "%s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (cur != knobs[i].want) {
			if (pwrite(fd, &knobs[i].want, 1, 0) != 1) {
				ret = -errno;
				log_warn("maps", "%s: setting %c: %s", path,
					 knobs[i].want, strerror(errno));
			} else {
				log_notice("maps", "%s: set net.ipv4.conf.%s.%s = %c (needed by the data plane)",
					   ifname, ifname, knobs[i].name,
					   knobs[i].want);
			}
		}
		close(fd);
	}
	return ret;
}

int kha_dp_load(struct kha_dp *dp, const struct kha_dp_opts *o, char *err,
		size_t errlen)
{
	char path[PATH_MAX], name[64];
	struct xdp_lb *skel = NULL;
	struct stat st;
	__u32 prog_id = 0;
	__u8 mode = 0;
	int ret;

	dp_init(dp, o->ifname, o->pin_root);
	dp->ring_size = o->ring_size ? o->ring_size : KHA_RING_SIZE_DEFAULT;
	if (!maglev_size_ok(dp->ring_size)) {
		snprintf(err, errlen,
			 "ring size %u: must be a prime between 3 and %u",
			 dp->ring_size, KHA_RING_SIZE_MAX);
		return -EINVAL;
	}
	dp->ifindex = if_nametoindex(o->ifname);
	if (!dp->ifindex) {
		snprintf(err, errlen, "interface %s: no such interface",
			 o->ifname);
		return -ENODEV;
	}
	pin_path(path, sizeof(path), dp->dir, KHA_LINK_XDP_PIN);
	if (!stat(path, &st)) {
		snprintf(err, errlen,
			 "interface %s: already attached by kha-xdp (%s exists), detach first",
			 o->ifname, path);
		return -EEXIST;
	}
	ret = xdp_query(dp->ifindex, &prog_id, &mode);
	if (ret == -EPERM) {
		snprintf(err, errlen,
			 "interface %s: querying XDP: %s (needs root or CAP_NET_ADMIN)",
			 o->ifname, strerror(-ret));
		return ret;
	}
	if (!ret && prog_id) {
		prog_name_by_id(prog_id, name, sizeof(name));
		snprintf(err, errlen,
			 "interface %s: XDP program %s (id %u, %s mode) already attached by someone else; not replacing it",
			 o->ifname, name, prog_id,
			 mode == XDP_ATTACHED_SKB ? "generic" :
			 mode == XDP_ATTACHED_HW ? "offload" :
			 mode == XDP_ATTACHED_MULTI ? "multi" : "native");
		return -EBUSY;
	}
	ret = mkdir_p(dp->dir);
	if (ret) {
		snprintf(err, errlen, "creating %s: %s%s", dp->dir,
			 strerror(-ret),
			 ret == -EPERM || ret == -EACCES ?
				 " (is bpffs mounted and are you root?)" : "");
		return ret;
	}
	/* map pins without a link are leftovers: nothing forwards with them */
	unpin_all(dp->dir);
	ret = load_skel(dp, false, &skel, err, errlen);
	if (ret)
		goto fail;
	ret = attach_link(dp, skel, o->xdp_generic, err, errlen);
	xdp_lb__destroy(skel);
	if (ret)
		goto fail;
	ret = map_rings(dp);
	if (ret) {
		snprintf(err, errlen, "mmap of map rings: %s", strerror(-ret));
		goto fail;
	}
	ret = write_default_lb_config(dp);
	if (ret) {
		snprintf(err, errlen, "writing lb_config: %s", strerror(-ret));
		goto fail;
	}
	set_if_sysctls(dp->ifname);
	log_info("maps", "%s: XDP program id %u attached (%s), pinned in %s",
		 dp->ifname, dp->prog_id, o->xdp_generic ? "generic" : "native",
		 dp->dir);
	return 0;
fail:
	unpin_all(dp->dir);
	kha_dp_close(dp);
	rmdirs(dp->dir, dp->pin_root);
	return ret;
}

static int check_map(struct kha_dp *dp, int i, char *err, size_t errlen)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), slots;

	if (bpf_obj_get_info_by_fd(dp->fds[i], &info, &len))
		return -errno;
	if (info.value_size != map_value_size[i]) {
		snprintf(err, errlen,
			 "pinned map %s/%s has value size %u, this kha-xdp expects %u: detach it and attach again",
			 dp->dir, map_names[i], info.value_size,
			 map_value_size[i]);
		return -EPROTO;
	}
	/*
	 * The flow tables (and ct_syn) are probed modulo their size and read
	 * through an mmap: an LRU hash of an older kha-xdp, or another size,
	 * is not one this build can use.
	 */
	slots = i == KHA_MAP_CT_SYN ? KHA_CT_SYN_LINES : KHA_FLOW_SLOTS;
	if ((i == KHA_MAP_CONNTRACK || i == KHA_MAP_SNAT ||
	     i == KHA_MAP_CT_SYN) &&
	    (info.type != BPF_MAP_TYPE_ARRAY || info.key_size != sizeof(__u32) ||
	     info.max_entries != slots || !(info.map_flags & BPF_F_MMAPABLE))) {
		snprintf(err, errlen,
			 "pinned map %s/%s is not a flow table of %u slots (type %u, %u entries): detach it and attach again",
			 dp->dir, map_names[i], slots, info.type,
			 info.max_entries);
		return -EPROTO;
	}
	if (i == KHA_MAP_RINGS) {
		dp->ring_size = info.max_entries / KHA_RING_LINES_PER_SLOT;
		if (!dp->ring_size)
			return -EPROTO;
	}
	return 0;
}

bool kha_dp_attached(const struct kha_dp *dp)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (dp->link_fd < 0)
		return false;
	if (bpf_obj_get_info_by_fd(dp->link_fd, &info, &len))
		return false;
	return info.type == BPF_LINK_TYPE_XDP &&
	       (int)info.xdp.ifindex == dp->ifindex;
}

int kha_dp_adopt(struct kha_dp *dp, const char *ifname, const char *pin_root,
		 char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int i, ret, found = 0;

	dp_init(dp, ifname, pin_root);
	dp->adopted = true;
	dp->ifindex = if_nametoindex(ifname);
	for (i = 0; i < KHA_MAP__MAX; i++) {
		pin_path(path, sizeof(path), dp->dir, map_names[i]);
		dp->fds[i] = bpf_obj_get(path);
		if (dp->fds[i] < 0) {
			ret = -errno;
			if (ret == -ENOENT && !found && i == 0) {
				snprintf(err, errlen, "nothing pinned in %s",
					 dp->dir);
				goto fail;
			}
			snprintf(err, errlen, "opening pinned map %s: %s%s",
				 path, strerror(-ret),
				 ret == -ENOENT ? " (pinned by an older kha-xdp: detach it and attach again)" : "");
			goto fail;
		}
		found++;
		ret = check_map(dp, i, err, errlen);
		if (ret)
			goto fail;
	}
	ret = map_rings(dp);
	if (ret) {
		snprintf(err, errlen, "mmap of %s/rings: %s", dp->dir,
			 strerror(-ret));
		goto fail;
	}
	/* ids are handed out after the highest one in use */
	for (i = 0; i < KHA_MAX_BACKENDS; i++) {
		struct kha_backend b;
		__u32 k = i;

		if (!bpf_map_lookup_elem(dp->fds[KHA_MAP_BACKENDS], &k, &b) &&
		    (b.flags & KHA_BE_F_PRESENT))
			dp->next_be_id = (i + 1) % KHA_MAX_BACKENDS;
	}
	if (!dp->ifindex) {
		snprintf(err, errlen, "interface %s: no such interface", ifname);
		return -ENOLINK;
	}
	pin_path(path, sizeof(path), dp->dir, KHA_LINK_XDP_PIN);
	dp->link_fd = bpf_obj_get(path);
	if (dp->link_fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -ENOLINK;
	}
	if (bpf_obj_get_info_by_fd(dp->link_fd, &info, &len) ||
	    info.type != BPF_LINK_TYPE_XDP ||
	    (int)info.xdp.ifindex != dp->ifindex) {
		snprintf(err, errlen, "%s: link no longer attached to %s", path,
			 ifname);
		close(dp->link_fd);
		dp->link_fd = -1;
		return -ENOLINK;
	}
	dp->prog_id = info.prog_id;
	return 0;
fail:
	kha_dp_close(dp);
	return ret;
}

int kha_dp_reattach(struct kha_dp *dp, bool xdp_generic, char *err,
		    size_t errlen)
{
	struct xdp_lb *skel = NULL;
	__u32 prog_id = 0;
	__u8 mode = 0;
	int ret;

	dp->ifindex = if_nametoindex(dp->ifname);
	if (!dp->ifindex) {
		snprintf(err, errlen, "interface %s: no such interface",
			 dp->ifname);
		return -ENODEV;
	}
	if (!xdp_query(dp->ifindex, &prog_id, &mode) && prog_id) {
		snprintf(err, errlen,
			 "interface %s: XDP program id %u already attached by someone else",
			 dp->ifname, prog_id);
		return -EBUSY;
	}
	if (dp->link_fd >= 0)
		close(dp->link_fd);
	dp->link_fd = -1;
	ret = mkdir_p(dp->dir);
	if (ret) {
		snprintf(err, errlen, "creating %s: %s", dp->dir,
			 strerror(-ret));
		return ret;
	}
	ret = load_skel(dp, true, &skel, err, errlen);
	if (ret)
		return ret;
	ret = attach_link(dp, skel, xdp_generic, err, errlen);
	xdp_lb__destroy(skel);
	if (ret)
		return ret;
	log_info("maps", "%s: XDP program id %u re-attached (%s) to the pinned maps in %s",
		 dp->ifname, dp->prog_id, xdp_generic ? "generic" : "native",
		 dp->dir);
	return 0;
}

static int prog_tag(int fd, __u8 tag[BPF_TAG_SIZE], __u32 *id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	memcpy(tag, info.tag, BPF_TAG_SIZE);
	*id = info.id;
	return 0;
}

int kha_dp_upgrade_prog(struct kha_dp *dp, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_link_update_opts, uo);
	__u8 old_tag[BPF_TAG_SIZE], new_tag[BPF_TAG_SIZE];
	struct bpf_program *prog;
	struct xdp_lb *skel = NULL;
	__u32 old_id = 0, new_id = 0;
	int old_fd, ret;

	if (dp->link_fd < 0)
		return -ENOLINK;
	old_fd = bpf_prog_get_fd_by_id(dp->prog_id);
	if (old_fd < 0 || prog_tag(old_fd, old_tag, &old_id)) {
		/* without CAP_SYS_ADMIN we cannot compare: replace anyway */
		memset(old_tag, 0, sizeof(old_tag));
	}
	ret = load_skel(dp, true, &skel, err, errlen);
	if (ret)
		goto out;
	prog = xdp_prog_of(skel);
	if (!prog || prog_tag(bpf_program__fd(prog), new_tag, &new_id)) {
		snprintf(err, errlen, "XDP object has no XDP program");
		ret = -ENOENT;
		goto out;
	}
	if (!memcmp(old_tag, new_tag, BPF_TAG_SIZE)) {
		ret = 0; /* the same code: keep the running program */
		goto out;
	}
	/* only if the link still runs the program we adopted */
	if (old_fd >= 0) {
		uo.flags = BPF_F_REPLACE;
		uo.old_prog_fd = old_fd;
	}
	if (bpf_link_update(dp->link_fd, bpf_program__fd(prog), &uo)) {
		ret = -errno;
		snprintf(err, errlen, "replacing XDP program id %u: %s",
			 dp->prog_id, strerror(-ret));
		goto out;
	}
	log_info("maps", "%s: XDP program id %u replaced by id %u (new code), maps and flows kept",
		 dp->ifname, dp->prog_id, new_id);
	dp->prog_id = new_id;
	ret = 0;
out:
	if (skel)
		xdp_lb__destroy(skel);
	if (old_fd >= 0)
		close(old_fd);
	return ret;
}

int kha_dp_open(struct kha_dp *dp, const struct kha_dp_opts *o, char *err,
		size_t errlen)
{
	int ret = kha_dp_adopt(dp, o->ifname, o->pin_root, err, errlen);

	if (!ret) {
		log_info("maps", "%s: adopted the pinned data plane in %s (XDP program id %u, ring size %u)",
			 dp->ifname, dp->dir, dp->prog_id, dp->ring_size);
		/* a new binary brings its own XDP code: swap it in, hitless */
		if (kha_dp_upgrade_prog(dp, err, errlen))
			log_warn("maps", "%s: keeping the running XDP program: %s",
				 dp->ifname, err);
		return 0;
	}
	if (ret == -ENOLINK) {
		log_warn("maps", "%s: %s; re-attaching to the pinned maps",
			 dp->ifname, err);
		ret = kha_dp_reattach(dp, o->xdp_generic, err, errlen);
		if (ret)
			kha_dp_close(dp);
		return ret;
	}
	if (ret != -ENOENT)
		return ret;
	return kha_dp_load(dp, o, err, errlen);
}

void kha_dp_destroy(struct kha_dp *dp)
{
	unpin_all(dp->dir);
	kha_dp_close(dp);
	rmdirs(dp->dir, dp->pin_root);
	log_info("maps", "%s: XDP program detached, pins removed from %s",
		 dp->ifname, dp->dir);
}

int kha_dp_detach_pins(const char *ifname, const char *pin_root)
{
	char dir[KHA_DP_ROOT_MAX + IF_NAMESIZE + 2], path[PATH_MAX];
	struct stat st;
	int i, n = 0;

	snprintf(dir, sizeof(dir), "%s/%s",
		 pin_root && *pin_root ? pin_root : KHA_PIN_ROOT_DEFAULT,
		 ifname);
	pin_path(path, sizeof(path), dir, KHA_LINK_XDP_PIN);
	n += !stat(path, &st);
	for (i = 0; i < KHA_MAP__MAX; i++) {
		pin_path(path, sizeof(path), dir, map_names[i]);
		n += !stat(path, &st);
	}
	unpin_all(dir);
	rmdirs(dir, pin_root && *pin_root ? pin_root : KHA_PIN_ROOT_DEFAULT);
	return n ? 0 : -ENOENT;
}

int kha_dp_lock(const char *ifname, const char *pin_root)
{
	char dir[KHA_DP_ROOT_MAX + IF_NAMESIZE + 2];
	int fd, ret;

	snprintf(dir, sizeof(dir), "%s/%s",
		 pin_root && *pin_root ? pin_root : KHA_PIN_ROOT_DEFAULT,
		 ifname);
	ret = mkdir_p(dir);
	if (ret)
		return ret;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * `vips` changed: XDP's per-CPU cache of its answers (bpf/xdp_lb.bpf.c,
 * vip_lookup()) must not be trusted any more. After the map writes, so a
 * CPU that caches an answer under the new generation read the new map.
 */
static int bump_vip_gen(struct kha_dp *dp)
{
	struct kha_lb_config c = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(dp->fds[KHA_MAP_LB_CONFIG], &zero, &c))
		return -errno;
	c.vip_gen++;
	return bpf_map_update_elem(dp->fds[KHA_MAP_LB_CONFIG], &zero, &c, 0) ?
		       -errno : 0;
}

int kha_dp_set_lb_config(struct kha_dp *dp, uint16_t snat_lo, uint16_t snat_hi,
			 struct kha_addr local_addr)
{
	struct kha_lb_config c = {};
	__u32 zero = 0;

	bpf_map_lookup_elem(dp->fds[KHA_MAP_LB_CONFIG], &zero, &c);
	c.snat_port_lo = snat_lo ? snat_lo : KHA_SNAT_PORT_LO_DEFAULT;
	c.snat_port_hi = snat_hi ? snat_hi : KHA_SNAT_PORT_HI_DEFAULT;
	c.ring_size = dp->ring_size;
	c.local_addr = local_addr;
	return bpf_map_update_elem(dp->fds[KHA_MAP_LB_CONFIG], &zero, &c, 0) ?
		       -errno : 0;
}

int kha_dp_get_lb_config(struct kha_dp *dp, struct kha_lb_config *out)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(dp->fds[KHA_MAP_LB_CONFIG], &zero, out) ?
		       -errno : 0;
}

/* ---- publication ---- */

uint32_t kha_dp_ring_get(const struct kha_dp *dp, uint32_t g)
{
	if (!dp->rings ||
	    g >= (uint64_t)KHA_RING_LINES_PER_SLOT * dp->ring_size * KHA_RING_LINE)
		return KHA_NO_BACKEND;
	return ring_id32(dp->rings[g]);
}

int kha_dp_read_ring(const struct kha_dp *dp, uint32_t vip_id, uint32_t gen,
		     uint32_t *out)
{
	const uint16_t *p;
	uint32_t s;

	if (vip_id >= KHA_MAX_VIPS || !dp->rings)
		return -EINVAL;
	p = ring_slot0(dp, vip_id, gen);
	for (s = 0; s < dp->ring_size; s++)
		out[s] = ring_id32(p[s]);
	return 0;
}

int kha_dp_vip_state(struct kha_dp *dp, uint32_t vip_id,
		     struct kha_vip_state *st)
{
	return bpf_map_lookup_elem(dp->fds[KHA_MAP_VIP_STATE], &vip_id, st) ?
		       -errno : 0;
}

int kha_dp_publish(struct kha_dp *dp, struct kha_dp_vip *vip,
		   struct kha_dp_pubstat *ps)
{
	struct maglev_backend mb[KHA_MAX_BACKENDS];
	struct kha_vip_state st = {};
	uint64_t t0, t1, t2;
	__u32 gen;
	int i, n = 0, ret;

	if (vip->id >= KHA_MAX_VIPS)
		return -EINVAL;
	for (i = 0; i < vip->nr_backends; i++) {
		const struct kha_dp_backend *b = &vip->backends[i];

		if (!b->healthy || !b->weight)
			continue;
		mb[n].addr = b->addr;
		mb[n].port = b->port;
		mb[n].weight = b->weight;
		mb[n].id = b->id;
		n++;
	}
	t0 = now_ns();
	ret = maglev_build(mb, n, dp->scratch, dp->ring_size);
	if (ret)
		return ret;
	if (kha_dp_vip_state(dp, vip->id, &st))
		return -errno;
	gen = (st.active_gen & 1) ^ 1;
	{
		uint16_t *p = ring_slot0(dp, vip->id, gen);
		uint32_t s;

		for (s = 0; s < dp->ring_size; s++)
			p[s] = ring_id16(dp->scratch[s]);
	}
	/* the table must be in memory before the flip makes it visible */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	t1 = now_ns();
	st.active_gen = gen;
	st.nr_healthy = n;
	if (bpf_map_update_elem(dp->fds[KHA_MAP_VIP_STATE], &vip->id, &st, 0))
		return -errno;
	t2 = now_ns();
	vip->nr_in_ring = n;
	if (ps) {
		ps->build_ns = t1 - t0;
		ps->flip_ns = t2 - t1;
	}
	return 0;
}

/* ---- VIPs and backends ---- */

static void vip_key_of(const struct kha_dp_vip *v, struct kha_vip_key *k)
{
	memset(k, 0, sizeof(*k));
	k->addr = v->addr;
	k->port = htons(v->port);
	k->proto = IPPROTO_TCP;
	k->family = KHA_AF_INET;
}

static void backend_entry(const struct kha_dp_vip *v,
			  const struct kha_dp_backend *b, struct kha_backend *e)
{
	memset(e, 0, sizeof(*e));
	e->addr = b->addr;
	e->port = htons(b->port);
	e->family = KHA_AF_INET;
	e->flags = KHA_BE_F_PRESENT | (b->healthy ? KHA_BE_F_HEALTHY : 0) |
		   (b->local ? KHA_BE_F_LOCAL : 0);
	e->vip_id = v->id;
	e->weight = b->weight;
}

static int zero_percpu(int fd, __u32 key, size_t vsize)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t sz = ((vsize + 7) & ~7ul) * (ncpu > 0 ? ncpu : 1);
	void *z = calloc(1, sz);
	int ret;

	if (!z)
		return -ENOMEM;
	ret = bpf_map_update_elem(fd, &key, z, 0) ? -errno : 0;
	free(z);
	return ret;
}

/* One syscall per backend whose entry changed since we last wrote it. */
static int write_backend(struct kha_dp *dp, __u32 id,
			 const struct kha_backend *e)
{
	if (id >= KHA_MAX_BACKENDS)
		return -EINVAL;
	if (dp->be_written_ok[id] &&
	    !memcmp(&dp->be_written[id], e, sizeof(*e)))
		return 0;
	if (bpf_map_update_elem(dp->fds[KHA_MAP_BACKENDS], &id, e, 0)) {
		dp->be_written_ok[id] = false;
		return -errno;
	}
	dp->be_written[id] = *e;
	dp->be_written_ok[id] = true;
	return 0;
}

int kha_dp_update_vip(struct kha_dp *dp, struct kha_dp_vip *vip,
		      struct kha_dp_pubstat *ps)
{
	struct kha_backend e;
	int i, ret;

	/* flags before table: a backend enters the ring only once present */
	for (i = 0; i < vip->nr_backends; i++) {
		backend_entry(vip, &vip->backends[i], &e);
		ret = write_backend(dp, vip->backends[i].id, &e);
		if (ret)
			return ret;
	}
	ret = kha_dp_publish(dp, vip, ps);
	return ret;
}

struct cur_vip {
	struct kha_vip_key key;
	__u32 id;
	bool keep;
};

int kha_dp_sync(struct kha_dp *dp, struct kha_dp_vip *vips, int n)
{
	static struct kha_backend cur_be[KHA_MAX_BACKENDS];
	bool be_present[KHA_MAX_BACKENDS] = {}, be_taken[KHA_MAX_BACKENDS] = {};
	struct cur_vip cur[KHA_MAX_VIPS * 2];
	bool vip_taken[KHA_MAX_VIPS] = {};
	struct kha_vip_key k, nk, *prev = NULL;
	int ncur = 0, i, j, c, ret;
	__u32 id;

	if (n > KHA_MAX_VIPS)
		return -E2BIG;
	/* what the maps hold now */
	while (!bpf_map_get_next_key(dp->fds[KHA_MAP_VIPS], prev, &nk) &&
	       ncur < (int)(sizeof(cur) / sizeof(cur[0]))) {
		struct kha_vip v;

		k = nk;
		prev = &k;
		if (bpf_map_lookup_elem(dp->fds[KHA_MAP_VIPS], &k, &v))
			continue;
		cur[ncur].key = k;
		cur[ncur].id = v.vip_id;
		cur[ncur].keep = false;
		ncur++;
	}
	for (id = 0; id < KHA_MAX_BACKENDS; id++) {
		if (bpf_map_lookup_elem(dp->fds[KHA_MAP_BACKENDS], &id,
					&cur_be[id])) {
			dp->be_written_ok[id] = false;
			continue;
		}
		/* the map is the truth: someone else may have written it */
		dp->be_written[id] = cur_be[id];
		dp->be_written_ok[id] = true;
		if (cur_be[id].flags & KHA_BE_F_PRESENT)
			be_present[id] = true;
	}

	/* VIP ids: keep by address and port */
	for (i = 0; i < n; i++) {
		vip_key_of(&vips[i], &k);
		vips[i].id = KHA_MAX_VIPS;
		for (c = 0; c < ncur; c++) {
			if (!memcmp(&cur[c].key, &k, sizeof(k)) &&
			    cur[c].id < KHA_MAX_VIPS && !vip_taken[cur[c].id]) {
				vips[i].id = cur[c].id;
				cur[c].keep = true;
				vip_taken[cur[c].id] = true;
				break;
			}
		}
	}
	for (i = 0; i < n; i++) {
		if (vips[i].id < KHA_MAX_VIPS)
			continue;
		for (id = 0; id < KHA_MAX_VIPS; id++) {
			bool in_use = vip_taken[id];

			for (c = 0; c < ncur && !in_use; c++)
				in_use = cur[c].id == id && cur[c].keep;
			if (!in_use)
				break;
		}
		if (id >= KHA_MAX_VIPS)
			return -ENOSPC;
		vips[i].id = id;
		vip_taken[id] = true;
		ret = zero_percpu(dp->fds[KHA_MAP_VIP_STATS], id,
				  sizeof(struct kha_counters));
		if (ret)
			return ret;
	}

	/* backend ids: keep by VIP + address + port */
	for (i = 0; i < n; i++) {
		for (j = 0; j < vips[i].nr_backends; j++) {
			struct kha_dp_backend *b = &vips[i].backends[j];

			b->id = KHA_NO_BACKEND;
			for (id = 0; id < KHA_MAX_BACKENDS; id++) {
				if (be_present[id] && !be_taken[id] &&
				    cur_be[id].vip_id == vips[i].id &&
				    cur_be[id].addr.v4 == b->addr.v4 &&
				    cur_be[id].port == htons(b->port)) {
					b->id = id;
					be_taken[id] = true;
					break;
				}
			}
		}
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < vips[i].nr_backends; j++) {
			struct kha_dp_backend *b = &vips[i].backends[j];
			int pass, tries;

			if (b->id != KHA_NO_BACKEND)
				continue;
			/*
			 * Round robin, and ids of backends removed in this
			 * very sync only as a last resort: their flows get a
			 * moment to be re-selected before the id means
			 * someone else.
			 */
			for (pass = 0; pass < 2 && b->id == KHA_NO_BACKEND;
			     pass++) {
				for (tries = 0; tries < KHA_MAX_BACKENDS;
				     tries++) {
					id = (dp->next_be_id + tries) %
					     KHA_MAX_BACKENDS;
					if (be_taken[id] ||
					    (pass == 0 && be_present[id]))
						continue;
					b->id = id;
					be_taken[id] = true;
					dp->next_be_id =
						(id + 1) % KHA_MAX_BACKENDS;
					break;
				}
			}
			if (b->id == KHA_NO_BACKEND)
				return -ENOSPC;
			ret = zero_percpu(dp->fds[KHA_MAP_BACKEND_STATS], b->id,
					  sizeof(struct kha_counters));
			if (ret)
				return ret;
		}
	}

	/* write: backends, then tables, then the VIPs that point at them */
	for (i = 0; i < n; i++) {
		ret = kha_dp_update_vip(dp, &vips[i], NULL);
		if (ret)
			return ret;
	}
	for (i = 0; i < n; i++) {
		struct kha_vip v = { .vip_id = vips[i].id,
				     .flags = KHA_VIP_F_ACTIVE };

		vip_key_of(&vips[i], &k);
		if (bpf_map_update_elem(dp->fds[KHA_MAP_VIPS], &k, &v, 0))
			return -errno;
	}
	/* retire what disappeared: VIP keys first, then their backends */
	for (c = 0; c < ncur; c++) {
		struct kha_vip_state z = {};

		if (cur[c].keep)
			continue;
		bpf_map_delete_elem(dp->fds[KHA_MAP_VIPS], &cur[c].key);
		if (cur[c].id < KHA_MAX_VIPS && !vip_taken[cur[c].id])
			bpf_map_update_elem(dp->fds[KHA_MAP_VIP_STATE],
					    &cur[c].id, &z, 0);
	}
	ret = bump_vip_gen(dp);
	if (ret)
		return ret;
	for (id = 0; id < KHA_MAX_BACKENDS; id++) {
		struct kha_backend gone;

		if (!be_present[id] || be_taken[id])
			continue;
		/* not PRESENT: the data plane re-selects its flows */
		gone = cur_be[id];
		gone.flags = 0;
		gone.weight = 0;
		ret = write_backend(dp, id, &gone);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- counters and views ---- */

static int sum_percpu(int fd, __u32 key, __u64 *out, size_t nfields)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t vsize = nfields * sizeof(__u64);
	__u64 *vals;
	int c;
	size_t f;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc(ncpu, vsize);
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, vals)) {
		int ret = -errno;

		free(vals);
		return ret;
	}
	memset(out, 0, vsize);
	for (c = 0; c < ncpu; c++)
		for (f = 0; f < nfields; f++)
			out[f] += vals[c * nfields + f];
	free(vals);
	return 0;
}

int kha_dp_vip_counters(struct kha_dp *dp, uint32_t vip_id,
			struct kha_counters *out)
{
	return sum_percpu(dp->fds[KHA_MAP_VIP_STATS], vip_id, (__u64 *)out,
			  sizeof(*out) / sizeof(__u64));
}

int kha_dp_backend_counters(struct kha_dp *dp, uint32_t be_id,
			    struct kha_counters *out)
{
	return sum_percpu(dp->fds[KHA_MAP_BACKEND_STATS], be_id, (__u64 *)out,
			  sizeof(*out) / sizeof(__u64));
}

int kha_dp_reasons(struct kha_dp *dp, struct kha_reasons *out)
{
	return sum_percpu(dp->fds[KHA_MAP_REASONS], 0, (__u64 *)out,
			  sizeof(*out) / sizeof(__u64));
}

int kha_dp_conn_counts(struct kha_dp *dp, uint32_t *counts)
{
	void *mem = NULL;
	size_t len = 0;
	long n;
	int ret;

	memset(counts, 0, KHA_MAX_BACKENDS * sizeof(*counts));
	/* 524288 slots: one mmap, not one syscall per slot */
	ret = kha_flows_map(dp->fds[KHA_MAP_CONNTRACK],
			    sizeof(struct kha_ct_slot), KHA_FLOW_SLOTS, &mem,
			    &len);
	if (ret)
		return ret;
	n = kha_ct_count(mem, kha_flow_now(), counts);
	kha_flows_unmap(mem, len);
	/* and the flows still in their handshake, by their snat slots */
	ret = kha_flows_map(dp->fds[KHA_MAP_CT_SYN],
			    sizeof(struct kha_ct_syn_line), KHA_CT_SYN_LINES,
			    &mem, &len);
	if (!ret) {
		void *sn = NULL;
		size_t snlen = 0;

		ret = kha_flows_map(dp->fds[KHA_MAP_SNAT],
				    sizeof(struct kha_snat_slot),
				    KHA_FLOW_SLOTS, &sn, &snlen);
		if (!ret)
			n += kha_ct_syn_count(mem, sn, kha_flow_now(), counts);
		kha_flows_unmap(sn, snlen);
		kha_flows_unmap(mem, len);
	}
	if (ret)
		return ret;
	return n > INT_MAX ? INT_MAX : (int)n;
}

int kha_dp_read_view(struct kha_dp *dp, struct kha_dp_view_vip *vips,
		     int max, int *n)
{
	struct kha_vip_key k, nk, *prev = NULL;
	struct kha_backend b;
	int i;
	__u32 id;

	*n = 0;
	while (!bpf_map_get_next_key(dp->fds[KHA_MAP_VIPS], prev, &nk) &&
	       *n < max) {
		struct kha_dp_view_vip *v = &vips[*n];

		k = nk;
		prev = &k;
		memset(v, 0, sizeof(*v) - sizeof(v->backends));
		v->key = k;
		if (bpf_map_lookup_elem(dp->fds[KHA_MAP_VIPS], &k, &v->vip))
			continue;
		kha_dp_vip_state(dp, v->vip.vip_id, &v->state);
		(*n)++;
	}
	for (id = 0; id < KHA_MAX_BACKENDS; id++) {
		if (bpf_map_lookup_elem(dp->fds[KHA_MAP_BACKENDS], &id, &b) ||
		    !(b.flags & KHA_BE_F_PRESENT))
			continue;
		for (i = 0; i < *n; i++) {
			struct kha_dp_view_vip *v = &vips[i];

			if (v->vip.vip_id != b.vip_id ||
			    v->nr_backends >= KHA_MAX_BACKENDS)
				continue;
			v->backends[v->nr_backends].id = id;
			v->backends[v->nr_backends].be = b;
			v->nr_backends++;
			break;
		}
	}
	return 0;
}
