# SPDX-License-Identifier: GPL-2.0
# Shared by vmtests/4*-vrrp-*.sh (sourced; not a test case itself).
#
# Lab: namespace ${T}br holds bridge br0; LB nodes ${T}n1 (10.99.0.1),
# ${T}n2 (10.99.0.2) and a client ${T}c (10.99.0.9) hang off it by veth,
# each seeing its end as eth0. The VIP is 10.99.0.100. VRRP, ARP and test
# traffic never leave these namespaces; everything is removed on exit.
#
# A node runs either kha-xdp's VRRP (KHA_VRRP_BIN, by default the test
# driver build/tests/vrrp_node: the daemon's loop with only the VRRP node)
# or Debian's keepalived (VRRP process only).

set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
T=${VRRP_TAG:-vr}$$
VIP=10.99.0.100
WORK=$(mktemp -d /tmp/$T.XXXX)
KHA_VRRP_BIN=${KHA_VRRP_BIN:-$ROOT/build/tests/vrrp_node}
declare -A PID KIND
FAILS=0

ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }
check() { # check "description" cmd...
	local d=$1; shift
	if "$@"; then ok "$d"; else nok "$d"; fi
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ns() { local n=$1; shift; nsenter --net=/run/netns/$T$n "$@"; }
# Background processes are started with nsenter directly, never through a
# shell function: $! must be the process itself (nsenter execs it), or a
# kill would hit a subshell and leave the daemon running.
NSENTER="nsenter --net=/run/netns"

lab_cleanup() {
	local n
	for n in "${!PID[@]}"; do
		node_kill "$n" 2>/dev/null
	done
	# anything else still inside our namespaces (socat children...)
	for n in n1 n2 c br; do
		local p
		for p in $(ip netns pids $T$n 2>/dev/null); do kill -KILL $p 2>/dev/null; done
		ip netns del $T$n 2>/dev/null
	done
	rm -rf "$WORK"
}

lab_up() {
	trap lab_cleanup EXIT
	trap 'exit 1' INT TERM
	if [ ! -x "$KHA_VRRP_BIN" ] || [ "$KHA_VRRP_BIN" = "$ROOT/build/tests/vrrp_node" ]; then
		make -s build/tests/vrrp_node >/dev/null || { nok "build vrrp_node"; exit 1; }
	fi
	local n i=0
	ip netns add ${T}br
	ip -n ${T}br link add br0 type bridge
	ip -n ${T}br link set br0 up
	for n in n1 n2 c; do
		i=$((i + 1))
		ip netns add $T$n
		ip link add $T$n type veth peer name p$n netns ${T}br
		ip link set $T$n netns $T$n
		ip -n $T$n link set $T$n name eth0
		ip -n ${T}br link set p$n master br0 up
		ip -n $T$n link set lo up
		ip -n $T$n link set eth0 up
		ns $n ethtool -K eth0 tx off rx off >/dev/null 2>&1
		ns br ethtool -K p$n tx off rx off >/dev/null 2>&1
	done
	ip -n ${T}n1 addr add 10.99.0.1/24 dev eth0
	ip -n ${T}n2 addr add 10.99.0.2/24 dev eth0
	ip -n ${T}c addr add 10.99.0.9/24 dev eth0
	# a capture of all VRRP and ARP on the segment, for post-mortems
	$NSENTER/${T}br tcpdump -i br0 -U -nn -w "$WORK/segment.pcap" 'ip proto 112 or arp' \
		>/dev/null 2>&1 &
	PID[tcpdump]=$!
	KIND[tcpdump]=tcpdump
	# each LB node answers with its name on VIP:8080 (any address)
	for n in n1 n2; do
		$NSENTER/$T$n socat TCP-LISTEN:8080,reuseaddr,fork EXEC:"echo $n" \
			>/dev/null 2>&1 &
		PID[srv$n]=$!
		KIND[srv$n]=srv
	done
}

# kha_conf NODE PRIO VERSION ADVERT [extra vrrp lines...]
kha_conf() {
	local n=$1 prio=$2 ver=$3 adv=$4; shift 4
	{
		echo "interface eth0"
		echo "vip $VIP:8443 {"
		echo "	check none"
		echo "	backend 10.99.0.1:6443"
		echo "	backend 10.99.0.2:6443"
		echo "}"
		echo "vrrp {"
		echo "	version $ver"
		echo "	virtual_router_id 68"
		echo "	priority $prio"
		echo "	advert_int $adv"
		local l
		for l in "$@"; do echo "	$l"; done
		echo "}"
	} > "$WORK/$n.kha.conf"
}

# ka_conf NODE PRIO VERSION ADVERT STATE [extra vrrp_instance lines...]
ka_conf() {
	local n=$1 prio=$2 ver=$3 adv=$4 state=$5; shift 5
	{
		echo "global_defs {"
		echo "	router_id $T$n"
		echo "	vrrp_garp_master_delay 5"
		echo "}"
		echo "vrrp_instance VI_1 {"
		echo "	state $state"
		echo "	interface eth0"
		echo "	virtual_router_id 68"
		echo "	priority $prio"
		echo "	advert_int $adv"
		echo "	version $ver"
		local l
		for l in "$@"; do echo "	$l"; done
		echo "	virtual_ipaddress {"
		echo "		$VIP/32"
		echo "	}"
		echo "}"
	} > "$WORK/$n.ka.conf"
}

# node_start NODE kha|ka: runs NODE's kha-xdp or keepalived config
node_start() {
	local n=$1
	KIND[$n]=$2
	if [ "$2" = ka ]; then
		# pid files of a SIGKILLed keepalived would stop the new one
		rm -f "$WORK/$n.ka.pid" "$WORK/$n.vrrp.pid"
		$NSENTER/$T$n keepalived -n -l -D -P -f "$WORK/$n.ka.conf" \
			-p "$WORK/$n.ka.pid" -r "$WORK/$n.vrrp.pid" \
			>> "$WORK/$n.log" 2>&1 &
	else
		$NSENTER/$T$n "$KHA_VRRP_BIN" -c "$WORK/$n.kha.conf" -s "$WORK/$n.status" \
			>> "$WORK/$n.log" 2>&1 &
	fi
	PID[$n]=$!
}

# node_kill NODE [SIG]: SIGKILL by default; keepalived's VRRP child first,
# so that it cannot resign with priority 0 when its parent dies
node_kill() {
	local n=$1 sig=${2:-KILL} p
	[ -n "${PID[$n]:-}" ] || return 0
	if [ "${KIND[$n]}" = ka ] && [ "$sig" = KILL ]; then
		p=$(cat "$WORK/$n.vrrp.pid" 2>/dev/null)
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
	fi
	kill -$sig "${PID[$n]}" 2>/dev/null
	wait "${PID[$n]}" 2>/dev/null
	unset "PID[$n]"
}

# node_crash NODE: SIGKILL, and the machine is gone: its leftover VIP
# no longer answers (a killed keepalived or kha-xdp leaves it configured)
node_crash() {
	node_kill "$1" KILL
	ip -n $T$1 addr del $VIP/32 dev eth0 2>/dev/null
	return 0
}

has_vip() { ip -n $T$1 -4 addr show dev eth0 2>/dev/null | grep -q " $VIP/32 "; }
no_vip() { ! has_vip "$1"; }
holders() {
	local n out=""
	for n in n1 n2; do has_vip $n && out="$out$n "; done
	echo "${out% }"
}

# wait_holder NODE TIMEOUT_MS [T0_MS]: the VIP on NODE only; prints the
# ms elapsed since T0 (default: now)
wait_holder() {
	local n=$1 limit=$2 t0=${3:-$(now_ms)} t
	while :; do
		t=$(( $(now_ms) - t0 ))
		[ "$(holders)" = "$n" ] && { echo $t; return 0; }
		[ $t -gt $limit ] && { echo $t; return 1; }
		sleep 0.01
	done
}

# sample_one NODE SECONDS: every 50 ms exactly one holder, and it is NODE
sample_one() {
	local n=$1 secs=$2 bad=0 total=0 h end
	end=$(( $(now_ms) + secs * 1000 ))
	while [ $(now_ms) -lt $end ]; do
		h=$(holders)
		total=$((total + 1))
		[ "$h" = "$n" ] || { bad=$((bad + 1)); echo "# sample: holders '$h'"; }
		sleep 0.05
	done
	echo "# $total samples, $bad not exactly '$n'"
	[ $bad -eq 0 ] && [ $total -gt 10 ]
}

# client_reaches NODE: a TCP connection from the client to VIP:8080 is
# answered by NODE (the client's ARP entry follows the gratuitous ARPs)
client_reaches() {
	local want=$1 got i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		got=$(ns c socat -T1 - TCP:$VIP:8080,connect-timeout=1 </dev/null 2>/dev/null)
		[ "$got" = "$want" ] && return 0
		sleep 0.2
	done
	echo "# client got '$got', wanted '$want'"
	return 1
}

status_of() { # status_of NODE KEY (kha nodes)
	sed -n "s/^$2 //p" "$WORK/$1.status" 2>/dev/null
}

dump_logs() {
	local n
	for n in n1 n2; do
		[ -f "$WORK/$n.log" ] && sed "s/^/# $n: /" "$WORK/$n.log" | tail -n 25
	done
}

finish() {
	if [ $FAILS -ne 0 ]; then
		dump_logs
		[ -n "${KEEP_PCAP:-}" ] && cp "$WORK/segment.pcap" "$KEEP_PCAP"
	fi
	exit $FAILS
}
