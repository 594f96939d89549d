# SPDX-License-Identifier: GPL-2.0
# Shared by vmtests/4*-vrrp-*.sh (sourced; not a test case itself).
#
# Lab: namespace ${T}br holds bridge br0; LB nodes ${T}n1 (10.99.0.1),
# ${T}n2 (10.99.0.2) and a client ${T}c (10.99.0.9) hang off it by veth,
# each seeing its end as eth0. The VIP is 10.99.0.100. VRRP, ARP and test
# traffic never leave these namespaces; everything is removed on exit.
#
# A kha-xdp node runs either the real daemon (`build/kha-xdp run`, with its
# data plane and health checks: KHA_MODE=daemon) or the test driver
# build/tests/vrrp_node (KHA_MODE=driver: the daemon's event loop with only
# the same VRRP node, and a status file with every VRRP counter). A test
# sets KHA_MODE before sourcing this file; the environment overrides it.
# The other node may be Debian's keepalived (VRRP process only).

set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
T=${VRRP_TAG:-vr}$$
VIP=10.99.0.100
WORK=$(mktemp -d /tmp/$T.XXXX)
KHA_MODE=${KHA_VRRP_MODE:-${KHA_MODE:-daemon}}
KHA_VRRP_BIN=${KHA_VRRP_BIN:-$ROOT/build/tests/vrrp_node}
KHA_BIN=${KHA_BIN:-$ROOT/build/kha-xdp}
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
	rm -rf /sys/fs/bpf/$T-n1 /sys/fs/bpf/$T-n2
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
	if [ $KHA_MODE = daemon ]; then
		make -s build/kha-xdp >/dev/null || { nok "build kha-xdp"; exit 1; }
	elif [ "$KHA_VRRP_BIN" = "$ROOT/build/tests/vrrp_node" ]; then
		make -s build/tests/vrrp_node >/dev/null || { nok "build vrrp_node"; exit 1; }
	fi
	echo "# kha-xdp nodes: $KHA_MODE"
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
	# each LB node answers with its name on VIP:8080 (any address), and is
	# its own apiserver backend on :6443 (health-checked by the daemon)
	for n in n1 n2; do
		backend_up $n
		$NSENTER/$T$n socat TCP-LISTEN:8080,reuseaddr,fork EXEC:"echo $n" \
			>/dev/null 2>&1 &
		PID[srv$n]=$!
		KIND[srv$n]=srv
	done
}

addr_of() { case $1 in n1) echo 10.99.0.1;; n2) echo 10.99.0.2;; esac; }

# the node's backend (its apiserver stand-in) on :6443
backend_up() {
	$NSENTER/$T$1 socat TCP-LISTEN:6443,bind=$(addr_of $1),reuseaddr,fork \
		EXEC:"echo ok" >/dev/null 2>&1 &
	PID[be$1]=$!
	KIND[be$1]=srv
}
backend_down() { node_kill be$1 KILL; }

# "no healthy backend" on NODE / healed: the daemon sees it through its
# health checks; the driver is told as the daemon tells the VRRP node
# (kha_vrrp_set_faults), by SIGUSR1 / SIGUSR2
backends_fail() {
	if [ $KHA_MODE = daemon ]; then backend_down $1; else kill -USR1 "${PID[$1]}"; fi
}
backends_heal() {
	if [ $KHA_MODE = daemon ]; then backend_up $1; else kill -USR2 "${PID[$1]}"; fi
}

# exit leaving the VIP and data plane (systemd restart / upgrade)
node_exit_keep() {
	if [ $KHA_MODE = daemon ]; then node_kill $1 USR2; else node_kill $1 QUIT; fi
}

# kha_conf NODE PRIO VERSION ADVERT [extra vrrp lines...]
kha_conf() {
	local n=$1 prio=$2 ver=$3 adv=$4; shift 4
	{
		echo "interface eth0"
		echo "pin_root /sys/fs/bpf/$T-$n"
		echo "control_socket $WORK/$n.sock"
		echo "local_clients no"
		echo "vip $VIP:8443 {"
		echo "	check tcp"
		echo "	inter 200"
		echo "	fall 2"
		echo "	rise 2"
		echo "	backend $(addr_of $n):6443"
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
	elif [ $KHA_MODE = daemon ]; then
		# not under systemd: SIGTERM is a full stop, SIGUSR2 a keep
		$NSENTER/$T$n env -u NOTIFY_SOCKET -u INVOCATION_ID "$KHA_BIN" run \
			-c "$WORK/$n.kha.conf" >> "$WORK/$n.log" 2>&1 &
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

# stop_gap OLD NEW LIMIT_MS: SIGTERM the master OLD (it resigns with
# priority 0 and removes its VIP); GAP = ms from OLD dropping the VIP to
# NEW holding it alone (what a client sees; keepalived's own shutdown
# latency before it resigns is not part of the protocol's failover)
stop_gap() {
	local old=$1 new=$2 limit=$3 t0 i=0
	kill -TERM "${PID[$old]}"
	while has_vip $old && [ $i -lt 500 ]; do sleep 0.005; i=$((i + 1)); done
	t0=$(now_ms)
	GAP=$(wait_holder $new $limit $t0)
	node_kill $old TERM
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

PY=/usr/bin/python3
[ -x $PY ] || PY=python3
# status_of NODE KEY: a field of the node's VRRP status ("state",
# "effective_priority", "drops.auth_failure"; "drops_total" = sum of the
# drop counters): the "vrrp" object of `kha-xdp status --json` (daemon),
# or the driver's status file, which holds the same object
status_of() {
	local f="$WORK/$1.status"
	if [ $KHA_MODE = daemon ] && [ "${KIND[$1]}" = kha ]; then
		f="$WORK/$1.status.json"
		"$KHA_BIN" status --json --ctl-socket "$WORK/$1.sock" > "$f" 2>/dev/null
	fi
	$PY - "$f" "$2" <<'PYEOF' 2>/dev/null
import json, sys
def find(o):
    if isinstance(o, dict):
        if "vrrp" in o and isinstance(o["vrrp"], dict):
            return o["vrrp"]
        for x in o.values():
            r = find(x)
            if r is not None:
                return r
    if isinstance(o, list):
        for x in o:
            r = find(x)
            if r is not None:
                return r
    return None
try:
    v = find(json.load(open(sys.argv[1])))
except Exception:
    sys.exit(1)
if v is None:
    sys.exit(1)
key = sys.argv[2]
if key == "drops_total":
    print(sum(v["drops"].values()))
    sys.exit(0)
for part in key.split("."):
    v = v[part]
print(v)
PYEOF
}
no_drops() { [ "$(status_of $1 drops_total)" = 0 ]; }

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
