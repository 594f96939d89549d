#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 5 end to end with `kha-xdp attach`: the reference topology, where
# the LB nodes are the masters (vmtests/50-local-lib.bash). Each master has
# XDP + tc egress + cgroup connect4/getpeername4 (at the cgroup v2 root,
# each acting only in its own netns); the VIP is moved by hand.
#
# Phases: A  VIP on m1, m1's apiserver on 0.0.0.0:6443
#         B  VIP moved to m2, m2's apiserver on its node address only
#         C  VIP back on m1, m1's apiserver restarted on its node address
# In each phase, 10 MB each way (sha256 both ways) for:
#   - outside clients whose addresses Maglev maps to each of the three
#     backends: the VIP holder's own apiserver (path 4: DNAT + tc egress)
#     and the two remote ones (paths 1-3: full NAT);
#   - a client process on every master (path 5: cgroup connect4), landing
#     on the backend its node address maps to, VIP holder or not;
# and every client's getpeername() says VIP:8443. Then `kha-xdp detach`:
# no tc filter, no clsact we made, no cgroup program of ours, no pin.
. "$(dirname "$0")/50-local-lib.bash"

lc_topo m1

for m in "${MASTERS[@]}"; do
	lc_conf "$m"
	out=$(lab_kha "$m" attach eth0 -c "$LAB_DIR/$m.conf" 2>&1)
	rc=$?
	echo "$out" | sed "s/^/#   $m: /"
	[ $rc -eq 0 ] || lab_die "kha-xdp attach on $m: $out"
done
ok "kha-xdp attach eth0 on m1, m2, m3"
for m in "${MASTERS[@]}"; do lc_check_attached "$m"; done

# move_vip FROM TO: by hand, as VRRP would; the neighbours learn the new
# owner by having their entry flushed instead of by gratuitous ARP
move_vip() {
	local n
	ip -n "$(lab_ns "$1")" addr del "$VIP/32" dev eth0 || lab_die "VIP off $1"
	ip -n "$(lab_ns "$2")" addr add "$VIP/32" dev eth0 || lab_die "VIP on $2"
	for n in c "${MASTERS[@]}"; do
		ip -n "$(lab_ns "$n")" neigh flush to "$VIP" 2>/dev/null
	done
}

lc_phase "A (VIP on m1, m1 apiserver on 0.0.0.0)" m1 m1 m2 m3

move_vip m1 m2
lc_phase "B (VIP moved to m2, m2 apiserver on ${MADDR[m2]} only)" m2 m1 m2 m3

# m1's apiserver now bound to its node address only, VIP back on m1
kill "${LAB_BACKEND_PID[m1]}" 2>/dev/null
wait "${LAB_BACKEND_PID[m1]}" 2>/dev/null
lab_backend m1 m1b "${MADDR[m1]}:$BPORT"
BE_ID[${MADDR[m1]}:$BPORT]=m1b
move_vip m2 m1
lc_phase "C (VIP back on m1, m1 apiserver on ${MADDR[m1]} only)" m1 m1 m2 m3

# (The hooks act in their own namespace only: were the netns check broken,
# the outside clients' connects would be redirected by a master's hook and
# reach remote apiservers from their own address instead of the VIP, which
# the full-NAT assertion of every phase would catch.)

for m in "${MASTERS[@]}"; do
	out=$(lab_kha "$m" detach eth0 --pin-root "$LAB_PIN/$m" 2>&1)
	rc=$?
	echo "$out" | sed "s/^/#   $m: /"
	check "$m: kha-xdp detach eth0 succeeds" test $rc -eq 0
done
for m in "${MASTERS[@]}"; do lc_check_detached "$m"; done

# with the hooks gone, a master's connect(VIP:8443) is plain again: it goes
# to the VIP holder, which has no XDP any more and nothing on :8443
out=$(lab_client m2 probe --to "$VIP:$VPORT" --timeout 3 2>&1)
check "after detach, connect(VIP:$VPORT) on m2 is no longer redirected (${out#probe })" \
	grep -q 'result=refused' <<<"$out"

[ "$LAB_FAILS" -eq 0 ]
