# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Shared by vmtests/5*-local-*.sh (sourced; not a test case itself): the
# reference topology, where the LB nodes are the masters.
#
#   switch ns: br0 --+-- c        clients  10.215.0.21 .. .44
#                    +-- m1       10.215.0.1x
#                    +-- m2       10.215.0.1y
#                    +-- m3       10.215.0.1z     VIP 10.215.0.100
#
# Each master runs an "apiserver" (tests/tools/backend.py on :6443: m1 on
# 0.0.0.0, m2 on its node address, m3 on 0.0.0.0) and kha-xdp (attached by
# the case). x, y, z are searched so that m1's node address maps to m1's own
# apiserver and m2's does not: a process on the VIP holder is then served by
# its own apiserver or by a remote one depending on who holds the VIP, and
# both kinds of local client are covered. Everything stays in namespaces
# made here; lab.sh removes them, the pins and the processes on exit (the
# pinned cgroup links go with their pins).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lab.sh"
lab_init "${LC_TAG:-lc}"

NET=10.215.0
VIP=$NET.100
VPORT=8443
BPORT=6443
MB10=$((10 << 20))
MASTERS=(m1 m2 m3)
PREDICT=$LAB_ROOT/build/tests/tools/predict
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
POOL=()
for ((i = 21; i <= 44; i++)); do POOL+=("$NET.$i"); done

[ -x "$KHA" ] || lab_die "$KHA not built"
[ -x "$PREDICT" ] || lab_die "build/tests/tools/predict not built"
[ -n "$CGROOT" ] || lab_die "no cgroup2 mount in /proc/mounts"

lc_pick_masters() {
	local a b c p
	for a in 11 12 13 14 15 16 17 18 19; do
		for b in 11 12 13 14 15 16 17 18 19; do
			for c in 11 12 13 14 15 16 17 18 19; do
				[ $a != $b ] && [ $a != $c ] && [ $b != $c ] || continue
				p=($("$PREDICT" -b $NET.$a:$BPORT -b $NET.$b:$BPORT \
					-b $NET.$c:$BPORT $NET.$a $NET.$b | awk '{print $2}'))
				if [ "${p[0]}" = $NET.$a:$BPORT ] && [ "${p[1]}" != $NET.$b:$BPORT ]; then
					echo "$a $b $c"
					return 0
				fi
			done
		done
	done
	return 1
}
lc_o=$(lc_pick_masters) || lab_die "no master addresses with m1 -> m1 and m2 -> elsewhere"
set -- $lc_o
declare -A MADDR=([m1]=$NET.$1 [m2]=$NET.$2 [m3]=$NET.$3)
BACKENDS=("${MADDR[m1]}:$BPORT" "${MADDR[m2]}:$BPORT" "${MADDR[m3]}:$BPORT")
set --

# The lab client of these cases: client.py's transfer protocol, plus what
# the application sees as its peer (getpeername), which is the point here.
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

# lc_topo VIP_HOLDER|-: namespaces, addresses, apiservers, predictions
lc_topo() {
	local m a b
	lab_switch
	lab_node c $(printf '%s/24 ' "${POOL[@]}")
	for m in "${MASTERS[@]}"; do
		lab_node "$m" "${MADDR[$m]}/24"
		lab_lb_port "$m" # any master may hold the VIP and XDP_TX
		lab_sysctl "$m" net.ipv4.ip_forward=1 net.ipv4.conf.all.accept_local=1 \
			net.ipv4.conf.eth0.accept_local=1
	done
	if [ "$1" != - ]; then
		ip -n "$(lab_ns "$1")" addr add "$VIP/32" dev eth0 || lab_die "VIP on $1"
	fi

	lab_backend m1 m1 "0.0.0.0:$BPORT"
	lab_backend m2 m2 "${MADDR[m2]}:$BPORT"
	lab_backend m3 m3 "0.0.0.0:$BPORT"
	declare -gA BE_ID=([${MADDR[m1]}:$BPORT]=m1 [${MADDR[m2]}:$BPORT]=m2 [${MADDR[m3]}:$BPORT]=m3)

	# which backend each address maps to; two outside clients per backend
	lab_predict "${BACKENDS[@]}" -- "${POOL[@]}" "${MADDR[@]}"
	CHOSEN=()
	declare -A per=()
	for a in "${POOL[@]}"; do
		b=${PRED[$a]}
		[ "${per[$b]:-0}" -ge 2 ] && continue
		per[$b]=$((${per[$b]:-0} + 1))
		CHOSEN+=("$a")
	done
	lab_log "masters: $(for m in "${MASTERS[@]}"; do printf '%s=%s ' "$m" "${MADDR[$m]}"; done)"
	lab_log "outside clients: $(for a in "${CHOSEN[@]}"; do printf '%s->%s ' "${a##*.}" "${BE_ID[${PRED[$a]}]}"; done)"
	lab_log "masters' own clients: $(for m in "${MASTERS[@]}"; do printf '%s->%s ' "$m" "${BE_ID[${PRED[${MADDR[$m]}]}]}"; done)"
	check "the outside client addresses cover all three backends (${#per[@]}/3)" \
		test ${#per[@]} -eq 3

	for m in "${MASTERS[@]}"; do
		lab_neigh "$m" "${CHOSEN[@]}" "${MADDR[@]}"
	done
}

# lc_conf M [EXTRA LINE...]: M's config file $LAB_DIR/M.conf; the extra
# lines go after the vip block (a vrrp block, for instance)
lc_conf() {
	local m=$1 b l
	shift
	{
		echo "interface eth0"
		echo "xdp_mode native"
		echo "pin_root $LAB_PIN/$m"
		echo "control_socket $LAB_DIR/ctl-$m.sock"
		echo "local_address ${MADDR[$m]}"
		echo "local_clients yes"
		echo "vip $VIP:$VPORT {"
		echo "	check tcp"
		echo "	inter 200"
		echo "	fall 2"
		echo "	rise 1"
		for b in "${BACKENDS[@]}"; do echo "	backend $b"; done
		echo "}"
		for l in "$@"; do echo "$l"; done
	} >"$LAB_DIR/$m.conf"
}

# lc_check_attached M: our tc filter on eth0 and both cgroup programs at
# the cgroup2 root; remembers their ids in CG_IDS[M]
declare -A CG_IDS=()
lc_check_attached() {
	local m=$1 d=$LAB_PIN/$1/eth0 f ids= id l cg n=0
	f=$(tc -n "$(lab_ns "$m")" filter show dev eth0 egress)
	check "$m: kha-xdp's tc egress filter (handle 0x4b48) is on eth0" \
		grep -q 'handle 0x4b48.*tc_egress' <<<"$f"
	for l in link_connect4 link_getpeername4; do
		id=$(bpftool -j link show pinned "$d/$l" 2>/dev/null |
			"$LAB_PY" -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])' 2>/dev/null)
		ids="$ids ${id:-none}"
	done
	CG_IDS[$m]=$ids
	cg=$(bpftool cgroup show "$CGROOT" 2>/dev/null)
	for id in $ids; do grep -Eq "^ *$id +" <<<"$cg" && n=$((n + 1)); done
	check "$m: connect4 + getpeername4 attached at the cgroup v2 root $CGROOT (prog ids$ids)" \
		test $n -eq 2
}

# lc_check_detached M: nothing of kha-xdp left for M
lc_check_detached() {
	local m=$1 ns cg left=0 id
	ns=$(lab_ns "$m")
	cg=$(bpftool cgroup show "$CGROOT" 2>/dev/null)
	check "$m: no tc filter left on eth0 ('$(tc -n "$ns" filter show dev eth0 egress | head -1)')" \
		test -z "$(tc -n "$ns" filter show dev eth0 egress)$(tc -n "$ns" filter show dev eth0 ingress 2>/dev/null)"
	check "$m: the clsact qdisc kha-xdp created is gone" \
		test -z "$(tc -n "$ns" qdisc show dev eth0 | grep clsact)"
	check "$m: bpftool net shows no program on eth0" \
		test -z "$(nsenter --net="/run/netns/$ns" bpftool net show dev eth0 | grep -E 'id [0-9]+')"
	for id in ${CG_IDS[$m]}; do grep -Eq "^ *$id +" <<<"$cg" && left=$((left + 1)); done
	check "$m: its connect4/getpeername4 programs (ids${CG_IDS[$m]}) are gone from the cgroup root" \
		test $left -eq 0
	check "$m: no pin of kha-xdp left under $LAB_PIN/$m ($(find "$LAB_PIN/$m" -mindepth 1 2>/dev/null | tr '\n' ' '))" \
		test -z "$(find "$LAB_PIN/$m" -mindepth 1 2>/dev/null)"
}

# lc_phase NAME HOLDER HOOKED...: every combination through the VIP, with
# HOLDER holding it and the masters HOOKED running kha-xdp's cgroup hook
lc_phase() {
	local name=$1 holder=$2 a l b want peer bp n_ok=0 n_land=0 n_peer=0 n_nat=0 local_n=0 m role
	local holder_be=${BE_ID[${MADDR[$holder]}:$BPORT]}
	shift 2
	local hooked=" $* "

	# outside clients: XDP on the holder (paths 1-4)
	for a in "${CHOSEN[@]}"; do
		l=$(lcx c "$VIP:$VPORT" "$a")
		want=${BE_ID[${PRED[$a]}]}
		b=$(field backend "$l")
		peer=$(field peer "$l")
		bp=$(field backend_peer "$l")
		[ -n "$b" ] || lab_log "$name: client $a: $l"
		grep -q "up_sha=ok down=$MB10 down_sha=ok" <<<"$l" && n_ok=$((n_ok + 1))
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
		bp=$(field backend_peer "$l")
		[ -n "$b" ] || lab_log "$name: client on $m: $l"
		role=$([ "$m" = "$holder" ] && echo "VIP holder" || echo "not holding the VIP")
		[[ $hooked == *" $m "* ]] || role="$role, no kha-xdp"
		check "$name: process on $m ($role) -> VIP: 10 MB each way intact" \
			grep -q "up_sha=ok down=$MB10 down_sha=ok" <<<"$l"
		check "$name: process on $m lands on the backend ${MADDR[$m]} maps to ($want; got ${b:-none})" \
			test "$b" = "$want"
		check "$name: process on $m sees VIP:$VPORT as its peer (got $(field peer "$l"))" \
			test "$(field peer "$l")" = "$VIP:$VPORT"
		if [[ $hooked == *" $m "* ]]; then
			check "$name: process on $m reached its backend directly from ${MADDR[$m]} (cgroup hook, not XDP; seen as $bp)" \
				test "${bp%:*}" = "${MADDR[$m]}"
		elif [ "$want" = "$holder_be" ]; then
			check "$name: process on $m went through the holder's XDP (DNAT, seen as $bp)" \
				test "${bp%:*}" = "${MADDR[$m]}"
		else
			check "$name: process on $m went through the holder's XDP (full NAT, seen as $bp)" \
				test "${bp%:*}" = "$VIP"
		fi
	done
}
