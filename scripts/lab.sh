# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The kha-xdp lab: a library of functions, sourced by vmtests/*.sh and
# scripts/demo.sh, that builds a switched L2 segment out of network
# namespaces. Nothing is created in the machine's own namespace: the bridge
# lives in a "switch" namespace of its own, every node is a namespace whose
# eth0 is a veth whose peer is a port of that bridge.
#
#   lab_init TAG            names everything ${TAG}$$-*, cleans up on EXIT
#   lab_switch              the switch namespace and its bridge br0
#   lab_node NAME ADDR/LEN...  a node namespace, eth0 plugged into br0
#   lab_p2p A IFA ADDR B IFB ADDR  a point-to-point veth (a router's leg)
#   lab_lb_port NAME        XDP_PASS on NAME's bridge port (so XDP_TX from
#                           NAME's native XDP reaches the bridge)
#   lab_lb_sysctls NAME     forwarding, accept_local, no redirects (datapath.md)
#   lab_exec NAME CMD...    run in NAME's netns, seeing /sys/fs/bpf
#   lab_bg NAME LOG CMD...  same, in the background (killed on cleanup)
#   lab_kill SIG PID        signal a lab_bg process and reap it quietly
#   lab_backend NAME ID ADDR:PORT...  start tests/tools/backend.py
#   lab_client NAME ARGS... tests/tools/client.py (xfer, stream, probe)
#   lab_kha NAME ARGS...    build/kha-xdp in NAME's netns
#   lab_topo NET [N]        the standard lab: clients, one LB, three backends
#   lab_conf / lab_daemon   a daemon config for it, `kha-xdp run`
#   lab_predict / lab_landed / lab_maps / lab_wait_*   what the tests check
#   ok / not_ok / check     TAP-style result lines for tests/run-all.sh
#
# See docs/lab.md for the topology and the reasons behind each step.

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KHA=${KHA:-$LAB_ROOT/build/kha-xdp}
LAB_TOOLS=$LAB_ROOT/tests/tools
LAB_PY=/usr/bin/python3
LAB_PASS_OBJ=$LAB_ROOT/build/tests/tools/xdp_pass.bpf.o

LAB_ID=
LAB_DIR=
LAB_PIN=
LAB_NSES=()
LAB_PIDS=()
LAB_FAILS=0
LAB_OKS=0
LAB_LB=lb     # the node that runs kha-xdp (lab_daemon)
LAB_CLIENT=c  # the node that lab_wait_backend connects from
declare -A LAB_BACKEND_PID=()

lab_log() { echo "# $*"; }

ok() {
	echo "ok - $*"
	LAB_OKS=$((LAB_OKS + 1))
}

not_ok() {
	echo "not ok - $*"
	LAB_FAILS=$((LAB_FAILS + 1))
}

# check DESCRIPTION CMD...: ok when CMD succeeds
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# lab_die MSG: a setup step failed; report it as a failure and stop
lab_die() {
	local msg="$*"
	not_ok "lab setup: ${msg%%$'\n'*}"
	[ "$msg" != "${msg#*$'\n'}" ] && sed 's/^/#   /' <<<"${msg#*$'\n'}"
	exit 1
}

lab_ns() { echo "$LAB_ID-$1"; }

lab_exec() {
	local n=$1
	shift
	nsenter --net="/run/netns/$LAB_ID-$n" -- "$@"
}

lab_kha() {
	local n=$1
	shift
	nsenter --net="/run/netns/$LAB_ID-$n" -- "$KHA" "$@"
}

# lab_attach_lb [OPTION...]: kha-xdp attach eth0 on the LB node of
# lab_topo for $VIP:$VPORT and every $BACKENDS entry (no local backends),
# pinned under $LAB_PIN, with OPTIONs added; its output goes to the log as
# comments, and a failed attach ends the case.
lab_attach_lb() {
	local args=(attach eth0 --no-local --vip "$VIP:$VPORT" --pin-root "$LAB_PIN" "$@")
	local b out rc

	for b in "${BACKENDS[@]}"; do args+=(--backend "$b"); done
	out=$(lab_kha lb "${args[@]}" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/#   /'
	[ $rc -eq 0 ] || lab_die "kha-xdp attach failed (rc=$rc, output above)"
}

# lab_reason NAME [IFACE]: the data plane's reasons counter NAME (summed
# over CPUs) from the maps pinned under $LAB_PIN/IFACE (default eth0)
lab_reason() {
	"$LAB_PY" "$LAB_TOOLS/khamaps.py" --json "$LAB_PIN/${2:-eth0}" |
		"$LAB_PY" -c 'import json,sys; print(json.load(sys.stdin)["reasons"][sys.argv[1]])' "$1"
}

lab_sysctl() {
	local n=$1
	shift
	ip netns exec "$LAB_ID-$n" sysctl -qw "$@" >/dev/null
}

# lab_init TAG: unique names from TAG and the shell's pid, cleanup on EXIT
lab_init() {
	[ "$(id -u)" -eq 0 ] || { echo "lab: must run as root" >&2; exit 1; }
	LAB_ID=${1:-lab}$$
	LAB_DIR=$(mktemp -d "/tmp/$LAB_ID.XXXXXX")
	LAB_PIN=/sys/fs/bpf/$LAB_ID
	LAB_CTL=$LAB_DIR/ctl.sock
	trap lab_cleanup EXIT
	trap 'echo "# lab: interrupted, cleaning up" >&2; exit 130' INT TERM HUP
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts ||
		mount -t bpf bpf /sys/fs/bpf
	lab_build_tools || lab_die "cannot build the lab's XDP_PASS program"
}

# Kill what we started, delete our namespaces (taking every veth and the
# bridge with them) and our pins. Safe to call twice.
lab_cleanup() {
	local rc=$? p n pids
	trap - EXIT INT TERM HUP
	for p in "${LAB_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -TERM "$p" 2>/dev/null
	done
	for n in "${LAB_NSES[@]}"; do
		pids=$(ip netns pids "$n" 2>/dev/null)
		[ -n "$pids" ] && kill -CONT $pids 2>/dev/null && kill -TERM $pids 2>/dev/null
	done
	sleep 0.2
	for p in "${LAB_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	for n in "${LAB_NSES[@]}"; do
		pids=$(ip netns pids "$n" 2>/dev/null)
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
	wait 2>/dev/null
	[ -n "$LAB_PIN" ] && [ -d "$LAB_PIN" ] && rm -rf "$LAB_PIN"
	if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then
		if [ -n "${LAB_KEEP:-}" ]; then
			echo "# lab: logs kept in $LAB_DIR" >&2
		else
			rm -rf "$LAB_DIR"
		fi
	fi
	LAB_NSES=()
	LAB_PIDS=()
	LAB_PIN=
	exit $rc
}

# The XDP_PASS object for bridge ports, built on demand with clang.
lab_build_tools() {
	local src=$LAB_TOOLS/xdp_pass.bpf.c
	[ -f "$LAB_PASS_OBJ" ] && [ "$LAB_PASS_OBJ" -nt "$src" ] && return 0
	mkdir -p "$(dirname "$LAB_PASS_OBJ")"
	clang -g -O2 -target bpf -Wall -Werror \
		-I"/usr/include/$(gcc -print-multiarch)" \
		-c "$src" -o "$LAB_PASS_OBJ.$$.tmp" && mv "$LAB_PASS_OBJ.$$.tmp" "$LAB_PASS_OBJ"
}

# lab_netns NAME: an empty namespace with lo up and IPv6 off (no DAD, no
# router solicitations: the captures and counters see only our traffic)
lab_netns() {
	local ns=$LAB_ID-$1
	ip netns add "$ns" || lab_die "ip netns add $ns"
	LAB_NSES+=("$ns")
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null
}

lab_switch() {
	lab_netns sw
	ip -n "$LAB_ID-sw" link add br0 type bridge || lab_die "bridge br0"
	ip -n "$LAB_ID-sw" link set br0 up
}

# lab_node NAME [ADDR/LEN...]: node namespace NAME with eth0 on the bridge
# (port NAME in the switch namespace). Checksum offload off on both ends so
# every packet carries a full checksum, as on a wire.
lab_node() {
	local name=$1 sw=$LAB_ID-sw ns=$LAB_ID-$1 a
	shift
	lab_netns "$name"
	ip link add "$name" netns "$sw" type veth peer name eth0 netns "$ns" ||
		lab_die "veth for $name"
	ip -n "$sw" link set "$name" master br0
	ip netns exec "$sw" ethtool -K "$name" tx off rx off >/dev/null 2>&1 ||
		lab_die "ethtool -K $name (switch side)"
	ip netns exec "$ns" ethtool -K eth0 tx off rx off >/dev/null 2>&1 ||
		lab_die "ethtool -K eth0 in $name"
	ip -n "$sw" link set "$name" up
	for a in "$@"; do
		ip -n "$ns" addr add "$a" dev eth0 || lab_die "address $a on $name"
	done
	ip -n "$ns" link set eth0 up
}

# lab_p2p A IFA ADDR_A B IFB ADDR_B: a point-to-point veth between nodes A
# and B (a router's second leg), checksum offload off on both ends
lab_p2p() {
	local a=$LAB_ID-$1 ifa=$2 aa=$3 b=$LAB_ID-$4 ifb=$5 ab=$6
	ip link add "$ifa" netns "$a" type veth peer name "$ifb" netns "$b" ||
		lab_die "veth $1:$ifa - $4:$ifb"
	ip netns exec "$a" ethtool -K "$ifa" tx off rx off >/dev/null 2>&1 ||
		lab_die "ethtool -K $ifa in $1"
	ip netns exec "$b" ethtool -K "$ifb" tx off rx off >/dev/null 2>&1 ||
		lab_die "ethtool -K $ifb in $4"
	ip -n "$a" addr add "$aa" dev "$ifa" || lab_die "address $aa on $1:$ifa"
	ip -n "$b" addr add "$ab" dev "$ifb" || lab_die "address $ab on $4:$ifb"
	ip -n "$a" link set "$ifa" up
	ip -n "$b" link set "$ifb" up
}

# lab_lb_port NAME: XDP_PASS (native) on the bridge port facing NAME, so
# the frames NAME's XDP program sends with XDP_TX are delivered.
lab_lb_port() {
	ip -n "$LAB_ID-sw" link set dev "$1" xdpdrv obj "$LAB_PASS_OBJ" sec xdp ||
		lab_die "XDP_PASS on bridge port $1"
}

# lab_lb_sysctls NAME: an LB node as an operator leaves it. kha-xdp itself
# sets what its data plane needs on the XDP interface (forwarding,
# accept_local, send_redirects: docs/datapath.md), and the tests check
# that it does; only the node-wide redirect default is set here.
lab_lb_sysctls() {
	lab_sysctl "$1" net.ipv4.conf.all.send_redirects=0
}

# lab_mac NAME: eth0's MAC address in NAME
lab_mac() {
	ip -n "$LAB_ID-$1" -br link show eth0 | awk '{print $3}'
}

# lab_bg NAME LOG CMD...: background process in NAME; pid in LAB_LAST_PID
lab_bg() {
	local n=$1 logf=$2
	shift 2
	nsenter --net="/run/netns/$LAB_ID-$n" -- "$@" >"$logf" 2>&1 &
	LAB_LAST_PID=$!
	LAB_PIDS+=("$LAB_LAST_PID")
}

# lab_wait_listen NAME ADDR:PORT [SECONDS]: until something listens there
lab_wait_listen() {
	local n=$1 ap=$2 t=${3:-5} i
	for ((i = 0; i < t * 20; i++)); do
		lab_exec "$n" ss -Hltn "src $ap" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# A self-signed certificate for the backends' HTTPS /readyz.
lab_cert() {
	[ -f "$LAB_DIR/cert.pem" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -days 2 -subj "/CN=kha-lab-apiserver" \
		-keyout "$LAB_DIR/key.pem" -out "$LAB_DIR/cert.pem" \
		>/dev/null 2>&1 || lab_die "openssl: self-signed certificate"
}

# lab_backend NAME ID ADDR:PORT...: backend.py in NAME, identified as ID,
# serving HTTPS /readyz and the transfer protocol on each ADDR:PORT.
# Its pid is LAB_BACKEND_PID[ID]; /readyz fails while $LAB_DIR/ready-ID is
# missing (created here).
lab_backend() {
	local n=$1 id=$2 l args=()
	shift 2
	lab_cert
	for l in "$@"; do args+=(--listen "$l"); done
	touch "$LAB_DIR/ready-$id"
	lab_bg "$n" "$LAB_DIR/backend-$id.log" "$LAB_PY" "$LAB_TOOLS/backend.py" \
		--id "$id" --cert "$LAB_DIR/cert.pem" --key "$LAB_DIR/key.pem" \
		--ready-file "$LAB_DIR/ready-$id" --quiet "${args[@]}"
	LAB_BACKEND_PID[$id]=$LAB_LAST_PID
	for l in "$@"; do
		lab_wait_listen "$n" "$l" || lab_die "backend $id does not listen on $l"
	done
}

# lab_client NAME ARGS...: tests/tools/client.py in NAME
lab_client() {
	local n=$1
	shift
	lab_exec "$n" "$LAB_PY" "$LAB_TOOLS/client.py" "$@"
}

# lab_tcp_segs NAME: TCP segments sent by NAME's stack so far
# (OutSegs + RetransSegs from /proc/net/snmp, which is per netns)
lab_tcp_segs() {
	lab_exec "$1" awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) f[$i] = i; h = 1 }
		else print $f["OutSegs"] + $f["RetransSegs"] }' /proc/net/snmp
}

# lab_tcp_retrans NS: TCP segments NS has sent again (RetransSegs)
lab_tcp_retrans() {
	lab_exec "$1" awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) f[$i] = i; h = 1 }
		else print $f["RetransSegs"] }' /proc/net/snmp
}

# lab_now_ms: monotonic-enough wall clock in milliseconds
lab_now_ms() { date +%s%3N; }

# lab_topo NET [NCLIENTS]: the standard one-LB lab on NET.0/24
#   c        clients NET.21 .. NET.(20+NCLIENTS)      (CLIENTS)
#   lb       NET.2, VIP NET.100/32 on eth0, lab_lb_sysctls (VIP, LB_ADDR)
#   b1..b3   NET.11..13, backend.py on :6443          (BACKENDS)
# with XDP_PASS on the LB's bridge port and the LB's neighbours resolved.
lab_topo() {
	local net=$1 n=${2:-12} i a
	VIP=$net.100
	VPORT=8443
	BPORT=6443
	LB_ADDR=$net.2
	CLIENTS=()
	for ((i = 21; i < 21 + n; i++)); do CLIENTS+=("$net.$i"); done
	BACKENDS=("$net.11:$BPORT" "$net.12:$BPORT" "$net.13:$BPORT")
	lab_switch
	lab_node c $(printf '%s/24 ' "${CLIENTS[@]}")
	lab_node lb "$LB_ADDR/24" "$VIP/32"
	for i in 1 2 3; do
		lab_node "b$i" "$net.1$i/24"
		lab_backend "b$i" "b$i" "$net.1$i:$BPORT"
	done
	lab_lb_port lb
	lab_lb_sysctls lb
	lab_neigh lb "${BACKENDS[@]%:*}" "${CLIENTS[@]}"
}

# lab_neigh NAME ADDR...: NAME resolves its neighbours ADDR... (the XDP
# program's bpf_fib_lookup needs them; the daemon's probes would do it for
# backends, clients' own ARP requests for the VIP for clients)
lab_neigh() {
	local n=$1 a
	shift
	for a in "$@"; do
		lab_exec "$n" ping -c1 -W1 -q "$a" >/dev/null ||
			lab_die "$n cannot ping $a"
	done
}

# lab_predict BACKEND... -- CLIENT...: fills PRED[client]=backend
lab_predict() {
	local pargs=() c b
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		pargs+=(-b "$1")
		shift
	done
	shift
	PRED=()
	while read -r c b; do PRED[$c]=$b; done < <("$LAB_ROOT/build/tests/tools/predict" "${pargs[@]}" "$@")
}
declare -A PRED=()

# lab_landed XFER_OUTPUT: fills LANDED[client]=backend_local (ADDR:PORT)
# and SHA_OK (connections whose bytes arrived intact both ways)
declare -A LANDED=()
lab_landed() {
	local l c bl
	LANDED=()
	SHA_OK=0
	while read -r l; do
		c=$(sed -n 's/^xfer from=\([0-9.]*\):.*/\1/p' <<<"$l")
		bl=$(sed -n 's/.* backend_local=\([^ ]*\) .*/\1/p' <<<"$l")
		[ -n "$c" ] && LANDED[$c]=${bl:-error}
		grep -q 'up_sha=ok .*down_sha=ok' <<<"$l" && SHA_OK=$((SHA_OK + 1))
	done <<<"$1"
}

# lab_conf FILE BODY...: a daemon config for the LB of lab_topo; the VIP
# block's check lines come from the arguments
lab_conf() {
	local f=$1 b
	shift
	{
		echo "interface eth0"
		echo "xdp_mode native"
		echo "pin_root $LAB_PIN"
		echo "control_socket $LAB_CTL"
		echo "local_address $LB_ADDR"
		echo "local_clients no"
		echo "vip $VIP:$VPORT {"
		for b in "$@"; do echo "	$b"; done
		for b in "${BACKENDS[@]}"; do echo "	backend $b"; done
		echo "}"
	} >"$f"
}

# lab_daemon CONF: `kha-xdp run -c CONF` in the $LAB_LB namespace, waits until
# its link is pinned and its control socket ($LAB_CTL) exists. Pid in LAB_DAEMON_PID.
lab_daemon() {
	local i
	lab_bg "$LAB_LB" "$LAB_DIR/daemon.log" "$KHA" run -c "$1"
	LAB_DAEMON_PID=$LAB_LAST_PID
	for ((i = 0; i < 100; i++)); do
		if [ -S "$LAB_CTL" ] && [ -e "$LAB_PIN/eth0/link_xdp" ]; then
			return 0
		fi
		kill -0 "$LAB_DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	sed 's/^/#   daemon: /' "$LAB_DIR/daemon.log"
	return 1
}

# lab_maps FIELD-EXPR: evaluate a python expression over khamaps' JSON `d`
# (from $LAB_MAPS_DIR, default $LAB_PIN/eth0)
lab_maps() {
	"$LAB_PY" "$LAB_TOOLS/khamaps.py" --json "${LAB_MAPS_DIR:-$LAB_PIN/eth0}" 2>/dev/null |
		"$LAB_PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# lab_vip_healthy [VIPADDR]: backends in the VIP's published table
lab_vip_healthy() {
	lab_maps "[v['nr_healthy'] for v in d['vips'] if v['addr']=='${1:-$VIP}:$VPORT'][0]" 2>/dev/null
}

# lab_wait_healthy N [SECONDS] [VIPADDR]: until the VIP's published table
# has N backends; prints the milliseconds it took
lab_wait_healthy() {
	local want=$1 t=${2:-10} vip=${3:-$VIP} t0 i
	t0=$(lab_now_ms)
	for ((i = 0; i < t * 50; i++)); do
		if [ "$(lab_vip_healthy "$vip")" = "$want" ]; then
			echo $(($(lab_now_ms) - t0))
			return 0
		fi
		sleep 0.02
	done
	echo $(($(lab_now_ms) - t0))
	return 1
}

# lab_wait_backend CLIENT WANT_ID [SECONDS]: new connections from CLIENT
# until one is answered by backend WANT_ID (or, with !ID, by any other
# backend); prints the milliseconds from the call
lab_wait_backend() {
	local c=$1 want=$2 t=${3:-10} t0 now r
	t0=$(lab_now_ms)
	while :; do
		r=$(lab_client "$LAB_CLIENT" probe --to "$VIP:$VPORT" --from "$c" --timeout 0.3)
		now=$(lab_now_ms)
		case $want in
		!*) grep -q "result=connected" <<<"$r" &&
			! grep -q "backend=${want#!} " <<<"$r " && break ;;
		*) grep -q "backend=$want " <<<"$r " && break ;;
		esac
		if [ $((now - t0)) -gt $((t * 1000)) ]; then
			echo $((now - t0))
			return 1
		fi
		sleep 0.02
	done
	echo $((now - t0))
}

# lab_kill_backend ID [SIGNAL]: kill backend ID (SIGKILL by default) and
# reap it quietly (no "Killed" job notice in the test output)
lab_kill_backend() {
	local pid=${LAB_BACKEND_PID[$1]}
	case ${2:-KILL} in
	STOP | CONT) kill "-$2" "$pid" ;;
	*) lab_kill "${2:-KILL}" "$pid" ;;
	esac
	return 0
}

# lab_kill SIGNAL PID: signal a process lab_bg started and reap it; its
# exit status is lab_kill's. (Inside one redirected group, so bash's
# "Killed" job notice does not land in the test output.)
lab_kill() {
	{
		kill "-$1" "$2"
		wait "$2"
	} 2>/dev/null
}
