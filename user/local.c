// SPDX-License-Identifier: GPL-2.0
/*
 * Attach and detach the local-backend (tc egress) and local-client (cgroup
 * connect4/getpeername4) programs; see local.h for the pins and the rules,
 * docs/local.md for why.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/pkt_sched.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tc_egress.skel.h"
#include "cgroup_sock.skel.h"
#include "local.h"
#include "log.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define SUB "local"

#define PIN_TC_PROG "prog_tc_egress"
#define PIN_TC_STATE "tc_state"
#define PIN_LINK_CONNECT4 "link_connect4"
#define PIN_LINK_GETPEERNAME4 "link_getpeername4"
#define PIN_LOCAL_PEER "local_peer"
#define TC_PROG_NAME "tc_egress"

/* Maps the cgroup/tc objects own; every other map must be pinned already. */
static bool map_is_private(const char *name)
{
	return !strcmp(name, PIN_LOCAL_PEER);
}

static int pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int kha_local_cgroup2_root(char *buf, size_t len)
{
	struct mntent *m;
	FILE *f;
	int err = -ENOENT;

	f = setmntent("/proc/mounts", "r");
	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2"))
			continue;
		if (strlen(m->mnt_dir) >= len) {
			err = -ENAMETOOLONG;
			break;
		}
		strcpy(buf, m->mnt_dir);
		err = 0;
		break;
	}
	endmntent(f);
	return err;
}

int kha_local_netns_cookie(uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) < 0)
		err = -errno;
	close(fd);
	return err;
}

/*
 * Point every map of `obj` at its pin in `dir` before load, so all programs
 * share the data plane's one set. Data plane maps must exist (the XDP
 * loader pins them); a private map that is not pinned yet is created by the
 * load and pinned by pin_private_maps(). Key and value sizes are checked:
 * a program verified against the wrong layout would read garbage.
 */
static int reuse_pinned_maps(struct bpf_object *obj, const char *dir)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int fd, err;

	bpf_object__for_each_map(map, obj) {
		struct bpf_map_info info = {};
		__u32 ilen = sizeof(info);
		const char *name = bpf_map__name(map);

		if (bpf_map__is_internal(map))
			continue; /* .rodata/.bss: per program */
		err = pin_path(path, sizeof(path), dir, name);
		if (err)
			return err;
		fd = bpf_obj_get(path);
		if (fd < 0) {
			err = -errno;
			if (err == -ENOENT && map_is_private(name))
				continue;
			log_err(SUB, "map %s: %s: %s%s", name, path, strerror(-err),
				err == -ENOENT ? " (is the XDP data plane attached?)" : "");
			return err;
		}
		err = bpf_obj_get_info_by_fd(fd, &info, &ilen);
		if (err) {
			err = -errno;
			log_err(SUB, "map %s: %s: info: %s", name, path, strerror(-err));
			close(fd);
			return err;
		}
		if (info.type != bpf_map__type(map) ||
		    info.key_size != bpf_map__key_size(map) ||
		    info.value_size != bpf_map__value_size(map)) {
			log_err(SUB, "map %s: %s: pinned map has type %u key %u value %u, program expects %u/%u/%u (stale pin from another build?)",
				name, path, info.type, info.key_size, info.value_size,
				bpf_map__type(map), bpf_map__key_size(map),
				bpf_map__value_size(map));
			close(fd);
			return -EINVAL;
		}
		err = bpf_map__reuse_fd(map, fd);
		close(fd); /* reuse_fd dups it */
		if (err) {
			log_err(SUB, "map %s: reuse %s: %s", name, path, strerror(-err));
			return err;
		}
	}
	return 0;
}

static int pin_private_maps(struct bpf_object *obj, const char *dir)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);

		if (bpf_map__is_internal(map) || !map_is_private(name))
			continue;
		err = pin_path(path, sizeof(path), dir, name);
		if (err)
			return err;
		if (access(path, F_OK) == 0)
			continue; /* reused, already pinned */
		err = bpf_map__pin(map, path);
		if (err) {
			log_err(SUB, "map %s: pin %s: %s", name, path, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* ---- tc egress -------------------------------------------------------- */

static int prog_id_of_fd(int fd, __u32 *id, char *name, size_t nlen)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*id = info.id;
	if (name)
		snprintf(name, nlen, "%s", info.name);
	return 0;
}

/* Program id and name of the filter at our handle/prio, 0 if none. */
static int tc_query_ours(int ifindex, __u32 *prog_id)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KHA_TC_HANDLE,
			    .priority = KHA_TC_PRIO);
	int err;

	libbpf_print_fn_t old;

	*prog_id = 0;
	/* "no such filter/qdisc" is an answer here, not a warning to log */
	old = libbpf_set_print(NULL);
	err = bpf_tc_query(&hook, &opts);
	libbpf_set_print(old);
	if (err == -ENOENT || err == -EINVAL)
		return 0; /* no filter there, or no clsact at all */
	if (err)
		return err;
	*prog_id = opts.prog_id;
	return 0;
}

/* Is prog_id the kha tc program (the pinned one, or one with our name)? */
static bool tc_prog_is_ours(const char *dir, __u32 prog_id)
{
	char path[PATH_MAX], name[BPF_OBJ_NAME_LEN];
	__u32 id = 0;
	int fd;

	if (!pin_path(path, sizeof(path), dir, PIN_TC_PROG)) {
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			int r = prog_id_of_fd(fd, &id, NULL, 0);

			close(fd);
			if (!r && id == prog_id)
				return true;
		}
	}
	/* pin lost (crash between attach and pin): fall back to the name */
	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return false;
	if (prog_id_of_fd(fd, &id, name, sizeof(name))) {
		close(fd);
		return false;
	}
	close(fd);
	return !strcmp(name, TC_PROG_NAME);
}

static int tc_state_read(const char *dir, struct kha_tc_state *st)
{
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd, err;

	memset(st, 0, sizeof(*st));
	err = pin_path(path, sizeof(path), dir, PIN_TC_STATE);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = bpf_map_lookup_elem(fd, &zero, st) ? -errno : 0;
	close(fd);
	return err;
}

static int tc_state_write(const char *dir, const struct kha_tc_state *st)
{
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd, err;

	err = pin_path(path, sizeof(path), dir, PIN_TC_STATE);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		LIBBPF_OPTS(bpf_map_create_opts, mo);

		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "kha_tc_state",
				    sizeof(__u32), sizeof(*st), 1, &mo);
		if (fd < 0) {
			err = -errno;
			log_err(SUB, "tc_state: create map: %s", strerror(-err));
			return err;
		}
		if (bpf_obj_pin(fd, path)) {
			err = -errno;
			log_err(SUB, "tc_state: pin %s: %s", path, strerror(-err));
			close(fd);
			return err;
		}
	}
	err = bpf_map_update_elem(fd, &zero, st, BPF_ANY) ? -errno : 0;
	if (err)
		log_err(SUB, "tc_state: %s: update: %s", path, strerror(-err));
	close(fd);
	return err;
}

/*
 * Filters left on the clsact qdisc, ingress and egress together, by an
 * RTM_GETTFILTER dump per direction. Any message back (a filter, or only a
 * priority's head) means someone uses the qdisc. Returns the number of
 * filters (at least 1 if anything is there) or -errno.
 */
static int tc_count_filters(int ifindex)
{
	static const __u32 parents[] = {
		TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
		TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS),
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd, count = 0, heads = 0, err = 0;
	char buf[16384];

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(parents) / sizeof(parents[0]) && !err;
	     i++) {
		struct {
			struct nlmsghdr nh;
			struct tcmsg tc;
		} req = {
			.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg)),
			.nh.nlmsg_type = RTM_GETTFILTER,
			.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.nh.nlmsg_seq = i + 1,
			.tc.tcm_family = AF_UNSPEC,
			.tc.tcm_ifindex = ifindex,
			.tc.tcm_parent = parents[i],
		};
		bool done = false;

		if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa,
			   sizeof(sa)) < 0) {
			err = -errno;
			break;
		}
		while (!done && !err) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			struct nlmsghdr *nh;

			if (n < 0) {
				err = -errno;
				break;
			}
			for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
			     nh = NLMSG_NEXT(nh, n)) {
				if (nh->nlmsg_type == NLMSG_DONE) {
					done = true;
					break;
				}
				if (nh->nlmsg_type == NLMSG_ERROR) {
					struct nlmsgerr *e = NLMSG_DATA(nh);

					/* no qdisc: nothing left there */
					if (e->error && e->error != -EINVAL &&
					    e->error != -ENOENT)
						err = e->error;
					done = true;
					break;
				}
				if (nh->nlmsg_type != RTM_NEWTFILTER)
					continue;
				/* a priority's head has handle 0; filters do not */
				heads++;
				if (((struct tcmsg *)NLMSG_DATA(nh))->tcm_handle)
					count++;
			}
		}
	}
	close(fd);
	if (err)
		return err;
	return count ? count : heads ? 1 : 0; /* anything there counts */
}

static int tc_attach(const struct kha_local_opts *o, int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KHA_TC_HANDLE,
			    .priority = KHA_TC_PRIO, .flags = BPF_TC_F_REPLACE);
	char path[PATH_MAX];
	struct kha_tc_state st;
	libbpf_print_fn_t old_print;
	struct tc_egress *skel;
	__u32 cur_id;
	int err;

	err = tc_query_ours(ifindex, &cur_id);
	if (err) {
		log_err(SUB, "tc %s: query filter: %s", o->ifname, strerror(-err));
		return err;
	}
	if (cur_id && !tc_prog_is_ours(o->pin_dir, cur_id)) {
		log_err(SUB, "tc %s: egress handle %#x prio %u holds program id %u, not kha-xdp's; not replacing it",
			o->ifname, KHA_TC_HANDLE, KHA_TC_PRIO, cur_id);
		return -EBUSY;
	}

	skel = tc_egress__open();
	if (!skel) {
		err = -errno;
		log_err(SUB, "tc_egress: open: %s", strerror(-err));
		return err;
	}
	err = reuse_pinned_maps(skel->obj, o->pin_dir);
	if (err)
		goto out;
	err = tc_egress__load(skel);
	if (err) {
		log_err(SUB, "tc_egress: load: %s", strerror(-err));
		goto out;
	}

	/*
	 * Record "we created clsact" before attaching: a crash after the
	 * qdisc exists must not make the next detach think it was the
	 * user's. An earlier run's flag is kept (clsact then already exists
	 * because of us).
	 */
	if (tc_state_read(o->pin_dir, &st))
		memset(&st, 0, sizeof(st));
	old_print = libbpf_set_print(NULL); /* EEXIST is expected */
	err = bpf_tc_hook_create(&hook);
	libbpf_set_print(old_print);
	if (err && err != -EEXIST) {
		log_err(SUB, "tc %s: create clsact qdisc: %s", o->ifname,
			strerror(-err));
		goto out;
	}
	if (!err || st.ifindex != (uint32_t)ifindex)
		st.flags = err ? 0 : KHA_TC_F_CREATED_CLSACT;
	st.ifindex = ifindex;
	st.handle = KHA_TC_HANDLE;
	st.prio = KHA_TC_PRIO;
	err = tc_state_write(o->pin_dir, &st);
	if (err)
		goto out;

	opts.prog_fd = bpf_program__fd(skel->progs.tc_egress);
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		log_err(SUB, "tc %s: attach egress filter: %s", o->ifname,
			strerror(-err));
		goto out;
	}
	err = pin_path(path, sizeof(path), o->pin_dir, PIN_TC_PROG);
	if (err)
		goto out;
	unlink(path); /* the replaced program's pin, if any */
	err = bpf_program__pin(skel->progs.tc_egress, path);
	if (err) {
		log_err(SUB, "tc_egress: pin %s: %s", path, strerror(-err));
		goto out;
	}
	log_info(SUB, "tc %s: egress filter handle %#x prio %u: program id %u%s",
		 o->ifname, KHA_TC_HANDLE, KHA_TC_PRIO, opts.prog_id,
		 st.flags & KHA_TC_F_CREATED_CLSACT ? " (clsact ours)" : "");
out:
	/* the filter holds the program; our fds and maps go */
	tc_egress__destroy(skel);
	return err;
}

static int tc_detach(const struct kha_local_opts *o)
{
	char path[PATH_MAX];
	struct kha_tc_state st;
	int ifindex, err = 0, r, left;
	bool named, removed = false;
	__u32 cur_id;

	if (tc_state_read(o->pin_dir, &st))
		memset(&st, 0, sizeof(st));
	ifindex = if_nametoindex(o->ifname);
	named = ifindex && (uint32_t)ifindex == st.ifindex;
	if (!ifindex)
		ifindex = st.ifindex; /* renamed? the recorded one, if alive */

	if (ifindex && !tc_query_ours(ifindex, &cur_id) && cur_id) {
		if (tc_prog_is_ours(o->pin_dir, cur_id)) {
			removed = true;
			DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
					    .attach_point = BPF_TC_EGRESS);
			DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts,
					    .handle = KHA_TC_HANDLE,
					    .priority = KHA_TC_PRIO);

			r = bpf_tc_detach(&hook, &opts);
			if (r && r != -ENOENT) {
				log_err(SUB, "tc %s: delete egress filter: %s",
					o->ifname, strerror(-r));
				err = err ?: r;
			}
		} else {
			log_warn(SUB, "tc %s: egress handle %#x prio %u holds program id %u, not ours; left alone",
				 o->ifname, KHA_TC_HANDLE, KHA_TC_PRIO, cur_id);
		}
	}

	/*
	 * The qdisc: only if we made it and nobody else uses it now, and
	 * only on the interface we made it on (the name still resolves to
	 * the recorded index, or our filter was found there).
	 */
	if (ifindex && (st.flags & KHA_TC_F_CREATED_CLSACT) &&
	    st.ifindex == (uint32_t)ifindex && (named || removed)) {
		left = tc_count_filters(ifindex);
		if (left == 0) {
			DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
					    .attach_point = BPF_TC_INGRESS |
							    BPF_TC_EGRESS);

			r = bpf_tc_hook_destroy(&hook);
			if (r && r != -ENOENT && r != -EINVAL) {
				log_err(SUB, "tc %s: delete clsact qdisc: %s",
					o->ifname, strerror(-r));
				err = err ?: r;
			}
		} else if (left > 0) {
			log_info(SUB, "tc %s: clsact kept: %d filter(s) of others on it",
				 o->ifname, left);
		} else {
			log_warn(SUB, "tc %s: list filters: %s; clsact kept",
				 o->ifname, strerror(-left));
		}
	}

	if (!pin_path(path, sizeof(path), o->pin_dir, PIN_TC_PROG))
		unlink(path);
	if (!pin_path(path, sizeof(path), o->pin_dir, PIN_TC_STATE))
		unlink(path);
	return err;
}

/* ---- cgroup connect4 / getpeername4 ----------------------------------- */

static int open_cgroup(const struct kha_local_opts *o, char *path, size_t len)
{
	int fd, err;

	if (o->cgroup_path && o->cgroup_path[0]) {
		if ((size_t)snprintf(path, len, "%s", o->cgroup_path) >= len)
			return -ENAMETOOLONG;
	} else {
		err = kha_local_cgroup2_root(path, len);
		if (err) {
			log_err(SUB, "cgroup v2: no cgroup2 mount in /proc/mounts: %s",
				strerror(-err));
			return err;
		}
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		log_err(SUB, "cgroup %s: %s", path, strerror(-err));
		return err;
	}
	return fd;
}

/*
 * Put `prog` behind the pinned link `name`: update the link in place when it
 * exists and is attached to this cgroup (no moment without a hook), else
 * create and pin a new one.
 */
static int cgroup_link(const struct kha_local_opts *o, struct bpf_program *prog,
		       const char *name, int cgfd, __u64 cg_id)
{
	struct bpf_link_info info = {};
	__u32 ilen = sizeof(info);
	char path[PATH_MAX];
	struct bpf_link *link;
	int fd, err;

	err = pin_path(path, sizeof(path), o->pin_dir, name);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (!bpf_obj_get_info_by_fd(fd, &info, &ilen) &&
		    info.type == BPF_LINK_TYPE_CGROUP &&
		    info.cgroup.cgroup_id == cg_id &&
		    !bpf_link_update(fd, bpf_program__fd(prog), NULL)) {
			close(fd);
			return 0;
		}
		/* detached, or another cgroup: replace it */
		bpf_link_detach(fd);
		close(fd);
		unlink(path);
	}
	link = bpf_program__attach_cgroup(prog, cgfd);
	if (!link) {
		err = -errno;
		log_err(SUB, "cgroup: attach %s: %s", bpf_program__name(prog),
			strerror(-err));
		return err;
	}
	err = bpf_link__pin(link, path);
	if (err)
		log_err(SUB, "cgroup: pin %s: %s", path, strerror(-err));
	bpf_link__destroy(link); /* the pin holds it; on error it goes */
	return err;
}

static int cgroup_attach(const struct kha_local_opts *o)
{
	char cgpath[PATH_MAX];
	struct cgroup_sock *skel = NULL;
	struct stat sb;
	uint64_t cookie;
	int cgfd, err;

	err = kha_local_netns_cookie(&cookie);
	if (err) {
		log_err(SUB, "netns cookie (SO_NETNS_COOKIE): %s", strerror(-err));
		return err;
	}
	cgfd = open_cgroup(o, cgpath, sizeof(cgpath));
	if (cgfd < 0)
		return cgfd;
	/* on cgroup2 a directory's inode number is its cgroup id */
	if (fstat(cgfd, &sb)) {
		err = -errno;
		goto out;
	}

	skel = cgroup_sock__open();
	if (!skel) {
		err = -errno;
		log_err(SUB, "cgroup_sock: open: %s", strerror(-err));
		goto out;
	}
	skel->rodata->netns_cookie = o->all_netns ? 0 : cookie;
	err = reuse_pinned_maps(skel->obj, o->pin_dir);
	if (err)
		goto out;
	err = cgroup_sock__load(skel);
	if (err) {
		log_err(SUB, "cgroup_sock: load: %s", strerror(-err));
		goto out;
	}
	err = pin_private_maps(skel->obj, o->pin_dir);
	if (err)
		goto out;
	err = cgroup_link(o, skel->progs.connect4, PIN_LINK_CONNECT4, cgfd,
			  sb.st_ino);
	if (err)
		goto out;
	err = cgroup_link(o, skel->progs.getpeername4, PIN_LINK_GETPEERNAME4,
			  cgfd, sb.st_ino);
	if (err)
		goto out;
	if (o->all_netns)
		log_info(SUB, "cgroup %s: connect4 + getpeername4 attached (every netns)",
			 cgpath);
	else
		log_info(SUB, "cgroup %s: connect4 + getpeername4 attached (netns cookie %llu)",
			 cgpath, (unsigned long long)cookie);
out:
	cgroup_sock__destroy(skel);
	close(cgfd);
	return err;
}

static int cgroup_detach(const struct kha_local_opts *o)
{
	static const char *const links[] = { PIN_LINK_CONNECT4,
					     PIN_LINK_GETPEERNAME4 };
	char path[PATH_MAX];
	int fd, err = 0;

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (pin_path(path, sizeof(path), o->pin_dir, links[i]))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		/*
		 * Detach explicitly: another process (a daemon) may still
		 * hold an fd of the link, which would keep it attached.
		 */
		if (bpf_link_detach(fd) && errno != ENOLINK) {
			int r = -errno;

			log_err(SUB, "cgroup: detach %s: %s", path, strerror(-r));
			err = err ?: r;
		}
		close(fd);
		if (unlink(path) && errno != ENOENT)
			err = err ?: -errno;
	}
	if (!pin_path(path, sizeof(path), o->pin_dir, PIN_LOCAL_PEER))
		unlink(path);
	return err;
}

/* ---- API --------------------------------------------------------------- */

static int check_opts(const struct kha_local_opts *o)
{
	if (!o || !o->pin_dir || !o->pin_dir[0])
		return -EINVAL;
	if (o->tc && (!o->ifname || !o->ifname[0]))
		return -EINVAL;
	return 0;
}

int kha_local_attach(const struct kha_local_opts *o)
{
	int err, ifindex;

	err = check_opts(o);
	if (err)
		return err;
	if (o->tc) {
		ifindex = if_nametoindex(o->ifname);
		if (!ifindex) {
			err = -errno;
			log_err(SUB, "tc %s: %s", o->ifname, strerror(-err));
			return err;
		}
		err = tc_attach(o, ifindex);
		if (err)
			return err;
	}
	if (o->cgroup) {
		err = cgroup_attach(o);
		if (err)
			return err;
	}
	return 0;
}

int kha_local_detach(const struct kha_local_opts *o)
{
	int err = 0, r;

	r = check_opts(o);
	if (r)
		return r;
	if (o->cgroup) {
		r = cgroup_detach(o);
		err = err ?: r;
	}
	if (o->tc) {
		r = tc_detach(o);
		err = err ?: r;
	}
	return err;
}

int kha_local_tc_attached(const struct kha_local_opts *o)
{
	__u32 id = 0;
	int ifindex;

	if (check_opts(o) || !o->ifname)
		return 0;
	ifindex = if_nametoindex(o->ifname);
	if (!ifindex || tc_query_ours(ifindex, &id) || !id)
		return 0;
	return tc_prog_is_ours(o->pin_dir, id);
}

int kha_local_cgroup_attached(const struct kha_local_opts *o)
{
	static const char *const links[] = { PIN_LINK_CONNECT4,
					     PIN_LINK_GETPEERNAME4 };
	char path[PATH_MAX];

	if (check_opts(o))
		return 0;
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		int fd, ok;

		if (pin_path(path, sizeof(path), o->pin_dir, links[i]))
			return 0;
		fd = bpf_obj_get(path);
		if (fd < 0)
			return 0;
		/* a detached cgroup link reports cgroup_id 0 */
		ok = !bpf_obj_get_info_by_fd(fd, &info, &len) &&
		     info.cgroup.cgroup_id != 0;
		close(fd);
		if (!ok)
			return 0;
	}
	return 1;
}
