// SPDX-License-Identifier: GPL-2.0
/*
 * The lab's XDP_PASS program. A native-XDP veth delivers XDP_TX and
 * XDP_REDIRECT frames only when its peer has an XDP program too, so the lab
 * attaches this one to the bridge-side peer of every load balancer's veth.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
