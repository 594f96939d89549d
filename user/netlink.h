/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few rtnetlink operations kha-xdp needs, through libnl-route-3: put a
 * /32 on an interface and take it off (VIPs, with or without VRRP), and
 * look an interface up. Each call opens and closes its own netlink socket:
 * they are rare (state changes, start, reload), and no socket state leaks
 * between subsystems. All return 0 or -errno; addresses in network order.
 */
#ifndef KHA_NETLINK_H
#define KHA_NETLINK_H

#include <stdbool.h>
#include <netinet/in.h>

/* Interface index by name: > 0, or -ENODEV. */
int kha_nl_ifindex(const char *ifname);

/* *up = administratively up and carrier (IFF_UP && IFF_RUNNING). */
int kha_nl_link_up(int ifindex, bool *up);

/*
 * The interface's primary IPv4 address: the first address that is not
 * secondary and not a /32 we may have added as a VIP (`skip`, may be NULL,
 * nr_skip entries). -EADDRNOTAVAIL when there is none.
 */
int kha_nl_primary_addr(int ifindex, const struct in_addr *skip, int nr_skip,
			struct in_addr *out);

/* Add addr/32 (scope global, label = interface name). Already present: 0. */
int kha_nl_addr_add(int ifindex, struct in_addr addr);

/* Remove addr/32. Not present: 0. */
int kha_nl_addr_del(int ifindex, struct in_addr addr);

/* *present = addr/32 is on the interface. */
int kha_nl_addr_has(int ifindex, struct in_addr addr, bool *present);

#endif /* KHA_NETLINK_H */
