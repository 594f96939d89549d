// SPDX-License-Identifier: GPL-2.0
/* rtnetlink through libnl-route-3: VIP /32 addresses and interface facts. */
#include <errno.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include "log.h"
#include "netlink.h"

static int nlerr(int err)
{
	switch (-err) {
	case NLE_EXIST:
		return -EEXIST;
	case NLE_PERM:
		return -EPERM;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_NOADDR:
	case NLE_OBJ_NOTFOUND:
		return -EADDRNOTAVAIL;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_BUSY:
		return -EBUSY;
	default:
		return -EIO;
	}
}

static int nl_open(struct nl_sock **out)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err;

	if (!sk)
		return -ENOMEM;
	err = nl_connect(sk, NETLINK_ROUTE);
	if (err < 0) {
		log_err("netlink", "connect: %s", nl_geterror(err));
		nl_socket_free(sk);
		return nlerr(err);
	}
	*out = sk;
	return 0;
}

int kha_nl_ifindex(const char *ifname)
{
	unsigned int idx = if_nametoindex(ifname);

	return idx ? (int)idx : -ENODEV;
}

int kha_nl_link_up(int ifindex, bool *up)
{
	struct nl_sock *sk;
	struct rtnl_link *link = NULL;
	unsigned int flags;
	int err;

	err = nl_open(&sk);
	if (err)
		return err;
	err = rtnl_link_get_kernel(sk, ifindex, NULL, &link);
	if (err < 0) {
		err = nlerr(err);
		goto out;
	}
	flags = rtnl_link_get_flags(link);
	/* IFF_RUNNING is the carrier: a veth whose peer is down lacks it */
	*up = (flags & IFF_UP) && (flags & IFF_RUNNING);
	rtnl_link_put(link);
	err = 0;
out:
	nl_socket_free(sk);
	return err;
}

struct primary_ctx {
	int ifindex;
	const struct in_addr *skip;
	int nr_skip;
	bool found;
	struct in_addr addr;
};

static void primary_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct primary_ctx *c = arg;
	struct nl_addr *local;
	struct in_addr in;

	if (c->found || rtnl_addr_get_family(a) != AF_INET ||
	    rtnl_addr_get_ifindex(a) != c->ifindex ||
	    (rtnl_addr_get_flags(a) & IFA_F_SECONDARY))
		return;
	local = rtnl_addr_get_local(a);
	if (!local || nl_addr_get_len(local) != 4)
		return;
	memcpy(&in, nl_addr_get_binary_addr(local), 4);
	for (int i = 0; i < c->nr_skip; i++)
		if (c->skip[i].s_addr == in.s_addr)
			return;
	c->addr = in;
	c->found = true;
}

/* Call @cb(address, @arg) for every address of every interface. */
static int addr_foreach(void (*cb)(struct nl_object *, void *), void *arg)
{
	struct nl_cache *cache = NULL;
	struct nl_sock *sk;
	int err;

	err = nl_open(&sk);
	if (err)
		return err;
	err = rtnl_addr_alloc_cache(sk, &cache);
	if (err < 0) {
		err = nlerr(err);
	} else {
		nl_cache_foreach(cache, cb, arg);
		nl_cache_free(cache);
		err = 0;
	}
	nl_socket_free(sk);
	return err;
}

int kha_nl_primary_addr(int ifindex, const struct in_addr *skip, int nr_skip,
			struct in_addr *out)
{
	struct primary_ctx c = { .ifindex = ifindex, .skip = skip,
				 .nr_skip = nr_skip };
	int err = addr_foreach(primary_cb, &c);

	if (err)
		return err;
	if (!c.found)
		return -EADDRNOTAVAIL;
	*out = c.addr;
	return 0;
}

static struct rtnl_addr *addr32(int ifindex, struct in_addr addr)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local;

	if (!a)
		return NULL;
	local = nl_addr_build(AF_INET, &addr, 4);
	if (!local) {
		rtnl_addr_put(a);
		return NULL;
	}
	nl_addr_set_prefixlen(local, 32);
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_local(a, local);
	rtnl_addr_set_prefixlen(a, 32);
	nl_addr_put(local);
	return a;
}

static int addr_op(int ifindex, struct in_addr addr, bool add)
{
	struct rtnl_addr *a;
	struct nl_sock *sk;
	char buf[INET_ADDRSTRLEN];
	int err;

	err = nl_open(&sk);
	if (err)
		return err;
	a = addr32(ifindex, addr);
	if (!a) {
		nl_socket_free(sk);
		return -ENOMEM;
	}
	if (add) {
		rtnl_addr_set_scope(a, RT_SCOPE_UNIVERSE);
		err = rtnl_addr_add(sk, a, NLM_F_CREATE | NLM_F_EXCL);
		if (err == -NLE_EXIST)
			err = 0;
	} else {
		err = rtnl_addr_delete(sk, a, 0);
		if (err == -NLE_NOADDR || err == -NLE_OBJ_NOTFOUND)
			err = 0;
	}
	if (err < 0) {
		log_err("netlink", "%s %s/32 on ifindex %d: %s",
			add ? "add" : "delete",
			inet_ntop(AF_INET, &addr, buf, sizeof(buf)), ifindex,
			nl_geterror(err));
		err = nlerr(err);
	}
	rtnl_addr_put(a);
	nl_socket_free(sk);
	return err;
}

int kha_nl_addr_add(int ifindex, struct in_addr addr)
{
	return addr_op(ifindex, addr, true);
}

int kha_nl_addr_del(int ifindex, struct in_addr addr)
{
	return addr_op(ifindex, addr, false);
}

struct has_ctx {
	int ifindex;
	struct in_addr addr;
	bool found;
};

static void has_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct has_ctx *c = arg;
	struct nl_addr *local = rtnl_addr_get_local(a);

	if (rtnl_addr_get_family(a) == AF_INET &&
	    rtnl_addr_get_ifindex(a) == c->ifindex && local &&
	    nl_addr_get_len(local) == 4 &&
	    !memcmp(nl_addr_get_binary_addr(local), &c->addr, 4))
		c->found = true;
}

int kha_nl_addr_has(int ifindex, struct in_addr addr, bool *present)
{
	struct has_ctx c = { .ifindex = ifindex, .addr = addr };
	int err = addr_foreach(has_cb, &c);

	if (!err)
		*present = c.found;
	return err;
}
