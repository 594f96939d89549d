#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: the reference deployment (../shared/reference/: three
# masters, each an LB node and an apiserver, one VIP) with kha-xdp in place
# of keepalived + haproxy, built in network namespaces (nothing touches the
# machine's own interfaces), then torn down.
#
#   master1 192.168.129.105  kha-xdp run (VRRP priority 120), apiserver :6443
#   master2 192.168.129.111  kha-xdp run (VRRP priority 110), apiserver :6443
#   master3 192.168.129.112  kha-xdp run (VRRP priority 100), apiserver :6443
#   VIP     192.168.129.253:8443, held by the VRRP master
#   client  192.168.129.21-.40 (twenty "kubelets" on one interface)
#
# The apiserver stand-in (tests/tools/backend.py) serves HTTPS /readyz with
# a self-signed certificate and a byte-transfer protocol on the same port.
# Shows: traffic through VIP:8443 and which master each client hit,
# `kha-xdp status`, `bpftool map dump pinned`, a master's apiserver killed
# and the failover, its return, master1's kha-xdp stopped and the VIP moving
# to master2 (every client still on the same apiserver), and a clean stop.
# About half a minute; Ctrl-C cleans up at any point.
set -u
. "$(dirname "$0")/lab.sh"

NET=192.168.129
VIP=$NET.253
VPORT=8443
BPORT=6443
MASTERS=(m1 m2 m3)
declare -A MADDR=([m1]=$NET.105 [m2]=$NET.111 [m3]=$NET.112)
declare -A PRIO=([m1]=120 [m2]=110 [m3]=100)
declare -A DPID=()
CLIENTS=()
for i in $(seq 21 40); do CLIENTS+=("$NET.$i"); done
ALL=$(IFS=,; echo "${CLIENTS[*]}")
INTER=500 FALL=2 RISE=2 TIMEOUT=500

B='' D='' N=''
[ -t 1 ] && B=$'\033[1m' D=$'\033[2m' N=$'\033[0m'
say() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
run() {
	printf '%s$ %s%s\n' "$D" "$*" "$N"
	"$@"
}
# kha-xdp in a master's namespace, shown as the operator would type it there
on() {
	local m=$1
	shift
	printf '%s%s# kha-xdp %s%s\n' "$D" "$m" "$*" "$N"
	lab_kha "$m" "$@"
}
name_of() { # ADDR:PORT -> master name
	local m
	for m in "${MASTERS[@]}"; do
		[ "${1%:*}" = "${MADDR[$m]}" ] && { echo "$m"; return; }
	done
	echo "?"
}

# traffic: one connection per client, 1 MB each way; a table of who went where
traffic() {
	local out l c bl n_ok=0
	out=$(lab_client client xfer --to "$VIP:$VPORT" --from "$ALL" --bytes 1000000 --timeout 5)
	declare -gA HIT=()
	printf '  %-16s %-8s %-22s %-22s %s\n' client master "backend saw peer" "bytes (1 MB each way)" ms
	while read -r l; do
		c=$(sed -n 's/^xfer from=\([0-9.]*\):.*/\1/p' <<<"$l")
		bl=$(sed -n 's/.* backend_local=\([^ ]*\) .*/\1/p' <<<"$l")
		if [ -n "$bl" ]; then
			HIT[$c]=$(name_of "$bl")
			grep -q 'up_sha=ok .*down_sha=ok' <<<"$l" && n_ok=$((n_ok + 1))
			printf '  %-16s %-8s %-22s %-22s %s\n' "$c" "${HIT[$c]}" \
				"$(sed -n 's/.* backend_peer=\([^ ]*\) .*/\1/p' <<<"$l")" \
				"$(grep -q 'up_sha=ok .*down_sha=ok' <<<"$l" && echo "sha256 ok both ways" || echo CORRUPT)" \
				"$(sed -n 's/.* ms=\([0-9]*\)/\1/p' <<<"$l")"
		else
			HIT[$c]=error
			printf '  %-16s %s\n' "$c" "${l##* error=}"
		fi
	done <<<"$out"
	echo "  -> $n_ok/${#CLIENTS[@]} connections delivered their bytes intact;" \
		"per master: $(for m in "${MASTERS[@]}"; do printf '%s=%d ' "$m" \
			"$(printf '%s\n' "${HIT[@]}" | grep -c "^$m$")"; done)"
}

# holder: the master that has the VIP on its eth0 ("none" if nobody)
holder() {
	local m
	for m in "${MASTERS[@]}"; do
		ip -n "$(lab_ns "$m")" -br addr show dev eth0 | grep -q " $VIP/" &&
			{ echo "$m"; return; }
	done
	echo none
}

# wait_holder M SECONDS: until M holds the VIP; prints the milliseconds
wait_holder() {
	local t0 i
	t0=$(lab_now_ms)
	for ((i = 0; i < $2 * 20; i++)); do
		[ "$(holder)" = "$1" ] && break
		sleep 0.05
	done
	echo $(($(lab_now_ms) - t0))
}

# start M: `kha-xdp run` in master M, until its link and socket exist
start() {
	local m=$1 i
	lab_bg "$m" "$LAB_DIR/daemon-$m.log" "$KHA" run -c "$LAB_DIR/$m.conf"
	DPID[$m]=$LAB_LAST_PID
	for ((i = 0; i < 100; i++)); do
		[ -S "$LAB_DIR/$m.sock" ] && [ -e "$LAB_PIN/$m/eth0/link_xdp" ] && return 0
		kill -0 "${DPID[$m]}" 2>/dev/null || break
		sleep 0.05
	done
	sed "s/^/  daemon $m: /" "$LAB_DIR/daemon-$m.log"
	echo "demo: kha-xdp run did not start on $m" >&2
	exit 1
}

[ -x "$KHA" ] || { echo "demo: $KHA not built (run make)" >&2; exit 1; }
lab_init demo
LAB_CLIENT=client
LAB_MAPS_DIR= # set to the VIP holder's pins below

say "Building the reference topology in network namespaces ($LAB_ID-*)"
lab_switch
lab_node client $(printf '%s/24 ' "${CLIENTS[@]}")
for m in "${MASTERS[@]}"; do
	lab_node "$m" "${MADDR[$m]}/24"
	lab_backend "$m" "$m" "${MADDR[$m]}:$BPORT"
	# a veth delivers XDP_TX frames only when its peer runs XDP too
	lab_lb_port "$m"
	lab_lb_sysctls "$m"
	echo "  $m  ${MADDR[$m]}  apiserver stand-in on :$BPORT (HTTPS /readyz, self-signed cert)"
done
echo "  client  $NET.21-.40 (20 addresses on one interface)"
for m in "${MASTERS[@]}"; do
	lab_neigh "$m" "${CLIENTS[@]}" $(for o in "${MASTERS[@]}"; do [ "$o" != "$m" ] && echo "${MADDR[$o]}"; done)
done

for m in "${MASTERS[@]}"; do
	st=BACKUP
	[ "$m" = m1 ] && st=MASTER
	cat >"$LAB_DIR/$m.conf" <<EOF
interface eth0
xdp_mode native
pin_root $LAB_PIN/$m
control_socket $LAB_DIR/$m.sock
local_address ${MADDR[$m]}
# the cgroup hook would sit at the machine's cgroup root and also catch the
# demo client's connections (docs/local.md); the demo's clients are remote
local_clients no

vip $VIP:$VPORT {
	check https
	check_path /readyz
	inter $INTER
	fall $FALL
	rise $RISE
	timeout $TIMEOUT
	backend ${MADDR[m1]}:$BPORT
	backend ${MADDR[m2]}:$BPORT
	backend ${MADDR[m3]}:$BPORT
}

vrrp {
	version 2
	virtual_router_id 68
	priority ${PRIO[$m]}
	state $st
	advert_int 1
	track_weight 30
	garp_master_delay 1
}
EOF
done
say "master1's config (master2 and master3 differ in priority, state and addresses)"
sed 's/^/  /' "$LAB_DIR/m1.conf"
run "$KHA" check -c "$LAB_DIR/m1.conf"

say "Starting kha-xdp run on the three masters"
for m in "${MASTERS[@]}"; do
	start "$m"
	echo "  $m# kha-xdp run -c $m.conf   (pid ${DPID[$m]})"
done
wait_holder m1 10 >/dev/null
echo "  VRRP: the VIP is on $(holder) (priority ${PRIO[m1]}); master2 and master3 are BACKUP"
LAB_MAPS_DIR=$LAB_PIN/m1/eth0
lab_wait_healthy 3 10 >/dev/null
sed 's/^/  daemon m1: /' "$LAB_DIR/daemon-m1.log" | head -12

say "20 clients connect to VIP:8443 (balance source: one client, one master)"
echo "  master1 holds the VIP and is a backend too: its connections are DNAT only"
echo "  (it sees the client's address; tc egress restores VIP:8443 on the replies);"
echo "  master2 and master3 are reached by full NAT (they see VIP:port-from-range)."
traffic
declare -A BEFORE=()
for c in "${CLIENTS[@]}"; do BEFORE[$c]=${HIT[$c]}; done

say "kha-xdp status"
on m1 status -c "$LAB_DIR/m1.conf"

say "The pinned maps, as bpftool shows them (BTF: named fields)"
run bpftool map dump pinned "$LAB_PIN/m1/eth0/backends" | grep -B1 -A12 '"addr"' | head -30
run bpftool map dump pinned "$LAB_PIN/m1/eth0/vip_stats" | head -24
echo "  (addresses and ports are stored in network byte order; decoded:)"
"$LAB_PY" "$LAB_TOOLS/khamaps.py" "$LAB_PIN/m1/eth0" | sed 's/^/  /'
echo "  every pin: $(ls "$LAB_PIN/m1/eth0" | tr '\n' ' ')"

say "Killing master2's apiserver (SIGKILL)"
lab_kill_backend m2
vc=
for c in "${CLIENTS[@]}"; do [ "${BEFORE[$c]}" = m2 ] && { vc=$c; break; }; done
if [ -n "$vc" ]; then
	ms=$(lab_wait_backend "$vc" '!m2' 10)
	echo "  client $vc (was on master2) is served by another master after $ms ms" \
		"(fall $FALL x inter $INTER ms)"
fi
grep -E "${MADDR[m2]//./\\.}" "$LAB_DIR/daemon-m1.log" | tail -1 | sed 's/^/  daemon m1: /'
traffic
moved=0 stayed=0
for c in "${CLIENTS[@]}"; do
	if [ "${BEFORE[$c]}" = m2 ]; then
		[ "${HIT[$c]}" != m2 ] && [ "${HIT[$c]}" != error ] && moved=$((moved + 1))
	elif [ "${HIT[$c]}" = "${BEFORE[$c]}" ]; then
		stayed=$((stayed + 1))
	fi
done
echo "  -> master2's clients moved: $moved; every other client stayed where it was: $stayed"
on m1 status -c "$LAB_DIR/m1.conf" | grep -E 'vip|backend|check'

say "Bringing master2's apiserver back"
lab_backend m2 m2 "${MADDR[m2]}:$BPORT"
if [ -n "$vc" ]; then
	ms=$(lab_wait_backend "$vc" m2 10)
	echo "  client $vc is back on master2 after $ms ms (rise $RISE x inter $INTER ms)"
fi
traffic

say "Stopping kha-xdp on master1 (SIGTERM): VRRP priority 0, master2 takes the VIP"
t0=$(lab_now_ms)
lab_kill TERM "${DPID[m1]}"
ms=$(wait_holder m2 10)
echo "  VIP on $(holder) $ms ms after the SIGTERM; master1 has" \
	"$(ip -n "$(lab_ns m1)" -d link show eth0 | grep -o 'prog/xdp id [0-9]*' || echo "no XDP program") left"
grep -iE "vrrp.*(master|backup)" "$LAB_DIR/daemon-m2.log" | tail -2 | sed 's/^/  daemon m2: /'
LAB_MAPS_DIR=$LAB_PIN/m2/eth0
echo "  Every LB node builds the same Maglev table from the same healthy set,"
echo "  so each client lands on the same apiserver through master2:"
traffic
same=0
for c in "${CLIENTS[@]}"; do [ "${HIT[$c]}" = "${BEFORE[$c]}" ] && same=$((same + 1)); done
echo "  -> $same/${#CLIENTS[@]} clients on the same master as through master1"
on m2 status -c "$LAB_DIR/m2.conf" | grep -E '^(interface|vrrp|vip)'

say "Stopping every kha-xdp (SIGTERM): programs, pins and the VIP are removed"
for m in m2 m3; do
	lab_kill TERM "${DPID[$m]}"
	echo "  $m: daemon exit status $?"
done
for m in "${MASTERS[@]}"; do
	echo "  $m: XDP on eth0: $(ip -n "$(lab_ns "$m")" -d link show eth0 | grep -o 'prog/xdp id [0-9]*' || echo none);" \
		"tc filters: $(ip netns exec "$(lab_ns "$m")" tc filter show dev eth0 egress 2>/dev/null | grep -c .);" \
		"pins: $(find "$LAB_PIN/$m" -mindepth 1 2>/dev/null | wc -l)"
done
echo "  VIP held by: $(holder)"

say "Done: removing the namespaces ($LAB_ID-*) and the lab files"
lab_cleanup
