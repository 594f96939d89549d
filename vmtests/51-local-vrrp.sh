#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 5 end to end with the daemon: `kha-xdp run` on the three masters of
# vmtests/50-local-lib.bash, VRRP (v3, 100 ms adverts) moving the VIP, TCP
# health checks, the local paths installed and removed by the daemon.
#
#   R1  m1 MASTER (priority 120): every combination as in 50-local-topology
#   R2  m1's daemon stopped (full stop): VRRP moves the VIP to m2 (GARP
#       tells the neighbours); m1 is left with no kha-xdp program or pin;
#       its own processes now reach the VIP over the network through m2's
#       XDP and still land on the backend m1's address maps to, and every
#       other combination still works
#   R3  m1's daemon started again: it preempts, re-installs its hooks, and
#       everything works again
# Then every daemon stops: nothing of kha-xdp is left behind.
LC_TAG=lcv
. "$(dirname "$0")/50-local-lib.bash"

lc_topo -

declare -A PRIO=([m1]=120 [m2]=110 [m3]=100) DPID=()
for m in "${MASTERS[@]}"; do
	st=BACKUP
	[ "$m" = m1 ] && st=MASTER
	lc_conf "$m" "vrrp {" "	version 3" "	virtual_router_id 68" \
		"	priority ${PRIO[$m]}" "	advert_int 0.1" "	state $st" \
		"	garp_master_delay 1" "}"
done

# start_daemon M: `kha-xdp run` in M, until its XDP link and hooks exist
start_daemon() {
	local m=$1 i
	lab_bg "$m" "$LAB_DIR/daemon-$m.log" "$KHA" run -c "$LAB_DIR/$m.conf" --on-exit stop
	DPID[$m]=$LAB_LAST_PID
	for ((i = 0; i < 100; i++)); do
		[ -e "$LAB_PIN/$m/eth0/link_xdp" ] && [ -e "$LAB_PIN/$m/eth0/link_connect4" ] &&
			[ -e "$LAB_PIN/$m/eth0/prog_tc_egress" ] && return 0
		kill -0 "${DPID[$m]}" 2>/dev/null || break
		sleep 0.05
	done
	sed "s/^/#   daemon $m: /" "$LAB_DIR/daemon-$m.log"
	return 1
}

# stop_daemon M: SIGTERM (full stop), wait for the process to exit
stop_daemon() {
	local m=$1 i
	kill -TERM "${DPID[$m]}" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "${DPID[$m]}" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# wait_vip M [SECONDS]: until M holds the VIP (and nobody else does)
wait_vip() {
	local m=$1 t=${2:-10} i n others
	for ((i = 0; i < t * 20; i++)); do
		others=0
		for n in "${MASTERS[@]}"; do
			[ "$n" = "$m" ] && continue
			ip -n "$(lab_ns "$n")" -br addr show dev eth0 | grep -q " $VIP/" && others=1
		done
		ip -n "$(lab_ns "$m")" -br addr show dev eth0 | grep -q " $VIP/" &&
			[ $others -eq 0 ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_healthy M: until M's published table holds all three backends
wait_healthy() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$("$LAB_PY" "$LAB_TOOLS/khamaps.py" --json "$LAB_PIN/$1/eth0" 2>/dev/null |
			"$LAB_PY" -c 'import json,sys; print(json.load(sys.stdin)["vips"][0]["nr_healthy"])' 2>/dev/null)" = 3 ] &&
			return 0
		sleep 0.05
	done
	return 1
}

for m in "${MASTERS[@]}"; do
	start_daemon "$m" || lab_die "kha-xdp run on $m did not come up"
done
ok "kha-xdp run on m1, m2, m3"
for m in "${MASTERS[@]}"; do
	check "$m: the daemon sees all three apiservers healthy" wait_healthy "$m"
done
check "VRRP: m1 (priority 120) holds the VIP" wait_vip m1
for m in "${MASTERS[@]}"; do lc_check_attached "$m"; done

lc_phase "R1 (VRRP, m1 master)" m1 m1 m2 m3

# --- failover: m1's daemon stops ------------------------------------------
t0=$(lab_now_ms)
check "m1's daemon exits on SIGTERM" stop_daemon m1
check "VRRP: the VIP moves to m2 (priority 110)" wait_vip m2
lab_log "VIP on m2 $(($(lab_now_ms) - t0)) ms after SIGTERM to m1's daemon"
lc_check_detached m1
lc_phase "R2 (m1's daemon stopped, VIP on m2)" m2 m2 m3

# --- m1 comes back and preempts -------------------------------------------
start_daemon m1 || lab_die "kha-xdp run on m1 did not come back"
check "m1: the daemon sees all three apiservers healthy again" wait_healthy m1
check "VRRP: m1 preempts and holds the VIP again" wait_vip m1
lc_check_attached m1
lc_phase "R3 (m1 back, VIP on m1)" m1 m1 m2 m3

# --- full stop --------------------------------------------------------------
for m in "${MASTERS[@]}"; do
	check "$m's daemon exits on SIGTERM" stop_daemon "$m"
done
for m in "${MASTERS[@]}"; do lc_check_detached "$m"; done
check "no master holds the VIP after every daemon stopped" \
	test -z "$(for m in "${MASTERS[@]}"; do ip -n "$(lab_ns "$m")" -br addr show dev eth0 | grep " $VIP/"; done)"

[ "$LAB_FAILS" -eq 0 ]
