#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 2 end to end: path-MTU discovery through the VIP. The backend sits
# behind a router whose link toward it has a 1000-byte MTU (route `mtu
# lock`); clients and the LB have 1500. A client's full-size segment,
# translated to VIP:port -> backend, makes the router send ICMP
# "fragmentation needed" to the VIP. The XDP program must translate that
# ICMP back to the client's flow (client:port <- VIP:8443), or the client
# never learns the smaller MTU and the upload stalls in a black hole.
#
#   br0 --+-- c    10.213.11.21            (client)
#         +-- lb   10.213.11.2, VIP .100   (XDP)
#         +-- r    10.213.11.1 --- rb 10.213.111.1 ==mtu 1000==> b4 10.213.111.4
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init e2e

NET=10.213.11
FAR=10.213.111
VIP=$NET.100 VPORT=8443 BPORT=6443
MB10=$((10 << 20))
[ -x "$KHA" ] || lab_die "$KHA not built"

lab_switch
lab_node c "$NET.21/24"
lab_node lb "$NET.2/24" "$VIP/32"
lab_node r "$NET.1/24"
lab_netns b4
lab_p2p r rb "$FAR.1/24" b4 eth0 "$FAR.4/24"
ip -n "$(lab_ns b4)" route add default via "$FAR.1"
lab_sysctl r net.ipv4.ip_forward=1
ip -n "$(lab_ns r)" route replace "$FAR.0/24" dev rb mtu lock 1000
lab_backend b4 b4 "$FAR.4:$BPORT"
lab_lb_port lb
lab_lb_sysctls lb
ip -n "$(lab_ns lb)" route add "$FAR.0/24" via "$NET.1"
lab_neigh lb "$NET.1" "$NET.21"

out=$(lab_kha lb attach eth0 --no-local --vip "$VIP:$VPORT" --backend "$FAR.4:$BPORT" \
	--pin-root "$LAB_PIN" 2>&1) || lab_die "kha-xdp attach: $out"
ok "kha-xdp attach with a backend behind a router"

# lab sanity: the client's own connection to the backend, via the router,
# learns the smaller MTU by itself (no VIP, no translation involved)
ip -n "$(lab_ns c)" route add "$FAR.0/24" via "$NET.1"
l=$(lab_client c xfer --to "$FAR.4:$BPORT" --from "$NET.21" --bytes 1000000 --timeout 10)
lab_log "direct via the router: $l"
check "without the VIP, PMTU discovery works through the router (lab sanity)" \
	grep -q "up_sha=ok .*down_sha=ok" <<<"$l"

r0=$(lab_maps 'd["reasons"].get("icmp_translated", 0)')
l=$(lab_client c xfer --to "$VIP:$VPORT" --from "$NET.21" --bytes $MB10 --timeout 15)
lab_log "through the VIP: $l"
check "10 MB each way through the VIP across a 1000-byte MTU hop, intact" \
	grep -q "up=$MB10 up_sha=ok down=$MB10 down_sha=ok" <<<"$l"
r1=$(lab_maps 'd["reasons"].get("icmp_translated", 0)')
check "the router's ICMP fragmentation-needed was translated ($r0 -> $r1)" test "$r1" -gt "$r0"
pmtu=$(lab_exec c ip route get "$VIP" from "$NET.21" | grep -o 'mtu [0-9]*')
check "the client learned the path MTU toward the VIP (${pmtu:-none})" test "$pmtu" = "mtu 1000"
lab_maps '"\n".join("%s=%d" % kv for kv in d["reasons"].items() if kv[1])' | sed 's/^/#   reason /'

lab_kha lb detach eth0 --pin-root "$LAB_PIN" >/dev/null 2>&1
exit 0
