#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 5 end to end: the reference topology, where the LB nodes are the
# masters. Three master namespaces on one bridge, each running a backend
# ("apiserver", backend.py on :6443) and `kha-xdp attach` (XDP + tc egress
# + cgroup connect4/getpeername4 at the cgroup v2 root); one client
# namespace outside.
#
#   switch ns: br0 --+-- c        clients  10.215.0.21 .. .44
#                    +-- m1       10.215.0.11  (+ VIP 10.215.0.100/32)
#                    +-- m2       10.215.0.12
#                    +-- m3       10.215.0.13
#
# Phases: A  VIP on m1, m1's apiserver on 0.0.0.0:6443
#         B  VIP moved to m2, m2's apiserver on 10.215.0.12:6443 only
#         C  VIP back on m1, m1's apiserver restarted on 10.215.0.11:6443
# In each phase, 10 MB each way (sha256 both ways) for:
#   - outside clients whose address Maglev maps to each of the three
#     backends: to the VIP holder's own apiserver (path 4: DNAT + tc egress)
#     and to the two remote ones (paths 1-3: full NAT);
#   - a client process on every master (path 5: cgroup connect4), landing
#     on the backend its node address maps to, VIP holder or not;
# and every client's getpeername() says VIP:8443.
# Then detach: no tc filter, no clsact we made, no cgroup program of ours,
# no pin left.
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init lc

NET=10.215.0
VIP=$NET.100
VPORT=8443
BPORT=6443
MB10=$((10 << 20))
MASTERS=(m1 m2 m3)
declare -A MADDR=([m1]=$NET.11 [m2]=$NET.12 [m3]=$NET.13)
BACKENDS=("$NET.11:$BPORT" "$NET.12:$BPORT" "$NET.13:$BPORT")
POOL=()
for ((i = 21; i <= 44; i++)); do POOL+=("$NET.$i"); done
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)

[ -x "$KHA" ] || lab_die "$KHA not built"
[ -x "$LAB_ROOT/build/tests/tools/predict" ] || lab_die "build/tests/tools/predict not built"
[ -n "$CGROOT" ] || lab_die "no cgroup2 mount in /proc/mounts"

# The lab client for this test: like client.py xfer, plus what the
# application sees as its peer (getpeername), which is the point here.
cat >"$LAB_DIR/lcx.py" <<'EOF'
import hashlib, os, random, socket, sys, time
def gen_bytes(seed, n):
    return random.Random("kha-%d" % seed).randbytes(n)
to = sys.argv[1].rsplit(":", 1); to = (to[0], int(to[1]))
src = sys.argv[2] if sys.argv[2] != "-" else None
n = int(sys.argv[3])
t0 = time.monotonic()
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(20)
    if src:
        s.bind((src, 0))
    s.connect(to)
    peer = "%s:%d" % s.getpeername()
    local = "%s:%d" % s.getsockname()
    seed = random.getrandbits(48)
    up = os.urandom(n)
    s.sendall(("KHA XFER %d %d\n" % (n, seed)).encode())
    s.sendall(up)
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            raise ConnectionError("EOF before the ID line")
        line += c
    w = line.decode().split()
    d = dict(zip([x.lower() for x in w[0::2]], w[1::2]))
    h = hashlib.sha256(); got = 0
    while True:
        c = s.recv(1 << 18)
        if not c:
            break
        h.update(c); got += len(c)
    s.close()
    up_ok = d.get("sha") == hashlib.sha256(up).hexdigest()
    down_ok = got == n and h.hexdigest() == hashlib.sha256(gen_bytes(seed, n)).hexdigest()
    print("lcx from=%s peer=%s backend=%s backend_local=%s backend_peer=%s up_sha=%s down=%d down_sha=%s ms=%.0f"
          % (local, peer, d.get("id"), d.get("local"), d.get("peer"),
             "ok" if up_ok else "BAD", got, "ok" if down_ok else "BAD",
             (time.monotonic() - t0) * 1000))
except (OSError, ValueError) as e:
    print("lcx from=%s error=%s" % (src, type(e).__name__ + ":" + str(e).replace(" ", "_")))
EOF
lcx() { # NS TO SRC|-  -> one lcx line
	lab_exec "$1" "$LAB_PY" "$LAB_DIR/lcx.py" "$2" "$3" "$MB10"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# --- topology -------------------------------------------------------------
lab_switch
lab_node c $(printf '%s/24 ' "${POOL[@]}")
for m in "${MASTERS[@]}"; do
	lab_node "$m" "${MADDR[$m]}/24"
	lab_lb_port "$m" # any master may hold the VIP and XDP_TX
	lab_sysctl "$m" net.ipv4.ip_forward=1 net.ipv4.conf.all.accept_local=1 \
		net.ipv4.conf.eth0.accept_local=1
done
ip -n "$(lab_ns m1)" addr add "$VIP/32" dev eth0 || lab_die "VIP on m1"

# apiservers: m1 on 0.0.0.0, m2 on its node address, m3 on 0.0.0.0
lab_backend m1 m1 "0.0.0.0:$BPORT"
lab_backend m2 m2 "$NET.12:$BPORT"
lab_backend m3 m3 "0.0.0.0:$BPORT"
declare -A BE_ID=([$NET.11:$BPORT]=m1 [$NET.12:$BPORT]=m2 [$NET.13:$BPORT]=m3)

# which backend each address maps to (clients and node addresses)
lab_predict "${BACKENDS[@]}" -- "${POOL[@]}" "${MADDR[@]}"
CHOSEN=()
declare -A PER=()
for a in "${POOL[@]}"; do
	b=${PRED[$a]}
	[ "${PER[$b]:-0}" -ge 2 ] && continue
	PER[$b]=$((${PER[$b]:-0} + 1))
	CHOSEN+=("$a")
done
lab_log "outside clients: $(for a in "${CHOSEN[@]}"; do printf '%s->%s ' "${a##*.}" "${BE_ID[${PRED[$a]}]}"; done)"
lab_log "masters' own clients: $(for m in "${MASTERS[@]}"; do printf '%s->%s ' "$m" "${BE_ID[${PRED[${MADDR[$m]}]}]}"; done)"
check "the outside client addresses cover all three backends (${#PER[@]}/3)" \
	test ${#PER[@]} -eq 3

for m in "${MASTERS[@]}"; do
	lab_neigh "$m" "${CHOSEN[@]}" "${MADDR[@]}"
done

# --- attach -------------------------------------------------------------
for m in "${MASTERS[@]}"; do
	{
		echo "interface eth0"
		echo "xdp_mode native"
		echo "pin_root $LAB_PIN/$m"
		echo "control_socket $LAB_DIR/ctl-$m.sock"
		echo "local_address ${MADDR[$m]}"
		echo "local_clients yes"
		echo "vip $VIP:$VPORT {"
		for b in "${BACKENDS[@]}"; do echo "	backend $b"; done
		echo "}"
	} >"$LAB_DIR/$m.conf"
	out=$(lab_kha "$m" attach eth0 -c "$LAB_DIR/$m.conf" 2>&1)
	rc=$?
	echo "$out" | sed "s/^/#   $m: /"
	[ $rc -eq 0 ] || lab_die "kha-xdp attach on $m: $out"
done
ok "kha-xdp attach eth0 on m1, m2, m3"

declare -A CG_IDS=()
for m in "${MASTERS[@]}"; do
	d=$LAB_PIN/$m/eth0
	f=$(tc -n "$(lab_ns "$m")" filter show dev eth0 egress)
	check "$m: kha-xdp's tc egress filter (handle 0x4b48) is on eth0" \
		grep -q 'handle 0x4b48.*tc_egress' <<<"$f"
	ids=
	for l in link_connect4 link_getpeername4; do
		id=$(bpftool -j link show pinned "$d/$l" 2>/dev/null |
			"$LAB_PY" -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])' 2>/dev/null)
		ids="$ids ${id:-none}"
	done
	CG_IDS[$m]=$ids
	cg=$(bpftool cgroup show "$CGROOT" 2>/dev/null)
	n=0
	for id in $ids; do grep -Eq "^ *$id +" <<<"$cg" && n=$((n + 1)); done
	check "$m: connect4 + getpeername4 attached at the cgroup v2 root $CGROOT (prog ids$ids)" \
		test $n -eq 2
done

# --- one phase: every combination -----------------------------------------
# phase NAME HOLDER
phase() {
	local name=$1 holder=$2 a l b want peer bp n_ok=0 n_land=0 n_peer=0 n_nat=0 local_n=0 m
	local holder_be=${BE_ID[${MADDR[$holder]}:$BPORT]}
	# outside clients
	for a in "${CHOSEN[@]}"; do
		l=$(lcx c "$VIP:$VPORT" "$a")
		want=${BE_ID[${PRED[$a]}]}
		b=$(field backend "$l")
		peer=$(field peer "$l")
		bp=$(field backend_peer "$l")
		[ -n "$b" ] || lab_log "$name: client $a: $l"
		grep -q 'up_sha=ok down=[0-9]* down_sha=ok' <<<"$l" && [ "$(field down "$l")" = $MB10 ] &&
			n_ok=$((n_ok + 1))
		[ "$b" = "$want" ] && n_land=$((n_land + 1))
		[ "$peer" = "$VIP:$VPORT" ] && n_peer=$((n_peer + 1))
		if [ "$want" = "$holder_be" ]; then
			# path 4: DNAT only, the apiserver sees the client itself
			local_n=$((local_n + 1))
			[ "${bp%:*}" = "$a" ] && n_nat=$((n_nat + 1))
		else
			# path 2: full NAT, the apiserver sees the VIP
			[ "${bp%:*}" = "$VIP" ] && n_nat=$((n_nat + 1))
		fi
	done
	check "$name: outside clients -> VIP: 10 MB each way intact: $n_ok/${#CHOSEN[@]}" \
		test $n_ok -eq ${#CHOSEN[@]}
	check "$name: outside clients land on the backend their address maps to: $n_land/${#CHOSEN[@]}" \
		test $n_land -eq ${#CHOSEN[@]}
	check "$name: outside clients see VIP:$VPORT as their peer: $n_peer/${#CHOSEN[@]}" \
		test $n_peer -eq ${#CHOSEN[@]}
	check "$name: $local_n outside client(s) served by the VIP holder $holder's own apiserver (path 4)" \
		test $local_n -ge 1
	check "$name: apiservers see the client (local, DNAT) or the VIP (remote, full NAT): $n_nat/${#CHOSEN[@]}" \
		test $n_nat -eq ${#CHOSEN[@]}

	# a client process on every master, VIP holder or not
	for m in "${MASTERS[@]}"; do
		l=$(lcx "$m" "$VIP:$VPORT" -)
		want=${BE_ID[${PRED[${MADDR[$m]}]}]}
		b=$(field backend "$l")
		[ -n "$b" ] || lab_log "$name: client on $m: $l"
		role=$([ "$m" = "$holder" ] && echo "VIP holder" || echo "not holding the VIP")
		check "$name: process on $m ($role) -> VIP: 10 MB each way intact" \
			grep -q "up_sha=ok down=$MB10 down_sha=ok" <<<"$l"
		check "$name: process on $m lands on the backend ${MADDR[$m]} maps to ($want; got ${b:-none})" \
			test "$b" = "$want"
		check "$name: process on $m sees VIP:$VPORT as its peer (got $(field peer "$l"))" \
			test "$(field peer "$l")" = "$VIP:$VPORT"
		bp=$(field backend_peer "$l")
		check "$name: process on $m reached its backend directly from ${MADDR[$m]} (not through XDP; seen as $bp)" \
			test "${bp%:*}" = "${MADDR[$m]}"
	done
}

# move_vip FROM TO: by hand, as VRRP would (the neighbours learn the new
# owner; here by flushing their entry instead of gratuitous ARP)
move_vip() {
	local n
	ip -n "$(lab_ns "$1")" addr del "$VIP/32" dev eth0 || lab_die "VIP off $1"
	ip -n "$(lab_ns "$2")" addr add "$VIP/32" dev eth0 || lab_die "VIP on $2"
	for n in c "${MASTERS[@]}"; do
		ip -n "$(lab_ns "$n")" neigh flush to "$VIP" 2>/dev/null
	done
}

phase "A (VIP on m1, m1 apiserver on 0.0.0.0)" m1

move_vip m1 m2
phase "B (VIP moved to m2, m2 apiserver on $NET.12 only)" m2

# m1's apiserver now bound to its node address only, VIP back on m1
kill "${LAB_BACKEND_PID[m1]}" 2>/dev/null
wait "${LAB_BACKEND_PID[m1]}" 2>/dev/null
lab_backend m1 m1b "$NET.11:$BPORT"
BE_ID[$NET.11:$BPORT]=m1b
move_vip m2 m1
phase "C (VIP back on m1, m1 apiserver on $NET.11 only)" m1

# (The hooks act in their own namespace only: were the netns check broken,
# the outside clients' connects would be redirected by a master's hook and
# reach remote apiservers from their own address instead of the VIP, which
# the full-NAT assertion of every phase would catch.)

# --- detach ---------------------------------------------------------------
for m in "${MASTERS[@]}"; do
	out=$(lab_kha "$m" detach eth0 --pin-root "$LAB_PIN/$m" 2>&1)
	rc=$?
	echo "$out" | sed "s/^/#   $m: /"
	check "$m: kha-xdp detach eth0 succeeds" test $rc -eq 0
done
cg=$(bpftool cgroup show "$CGROOT" 2>/dev/null)
for m in "${MASTERS[@]}"; do
	ns=$(lab_ns "$m")
	check "$m: no tc filter left on eth0 (egress: '$(tc -n "$ns" filter show dev eth0 egress | head -1)')" \
		test -z "$(tc -n "$ns" filter show dev eth0 egress)$(tc -n "$ns" filter show dev eth0 ingress 2>/dev/null)"
	check "$m: the clsact qdisc kha-xdp created is gone" \
		test -z "$(tc -n "$ns" qdisc show dev eth0 | grep clsact)"
	check "$m: bpftool net shows no program on eth0" \
		test -z "$(nsenter --net="/run/netns/$ns" bpftool net show dev eth0 | grep -E 'id [0-9]+')"
	left=0
	for id in ${CG_IDS[$m]}; do grep -Eq "^ *$id +" <<<"$cg" && left=$((left + 1)); done
	check "$m: its connect4/getpeername4 programs (ids${CG_IDS[$m]}) are gone from the cgroup root" \
		test $left -eq 0
	check "$m: no pin of kha-xdp left under $LAB_PIN/$m ($(find "$LAB_PIN/$m" -mindepth 1 2>/dev/null | tr '\n' ' '))" \
		test -z "$(find "$LAB_PIN/$m" -mindepth 1 2>/dev/null)"
done
# and with the hooks gone, a master's connect(VIP:8443) is plain again:
# it goes to the VIP holder, which has no XDP and nothing on :8443
out=$(lab_client m2 probe --to "$VIP:$VPORT" --timeout 3 2>&1)
check "after detach, connect(VIP:$VPORT) on m2 is no longer redirected (${out#probe })" \
	grep -q 'result=refused' <<<"$out"

[ $LAB_FAILS -eq 0 ]
