#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kha-xdp and Debian's keepalived in one VRRPv2 group (advert_int 1, the
# reference deployment's shape), both ways round: kha-xdp 120 / keepalived
# 110, then keepalived 120 / kha-xdp 110. For each: exactly one VIP holder
# once settled; master SIGKILLed -> peer within 3 x 1 s + skew + 0.5 s;
# master back -> it preempts; master stopped -> peer within one interval;
# clients follow the VIP.
source "$(dirname "$0")/40-vrrp-lib.bash"
lab_up

# skew for priority 110, v2: (256 - 110) / 256 s = 570 ms
KILL_LIMIT=$((3000 + 570 + 500))
# the returning 120 node: Master_Down_Interval 3 x 1 s + 531 ms, + 0.5 s
BACK_LIMIT=$((3000 + 531 + 500))
STOP_LIMIT=1000

round() { # round MASTER_KIND BACKUP_KIND
	local mk=$1 bk=$2 t t0
	local m=n1 b=n2 label="$1 120 vs $2 110"

	if [ $mk = kha ]; then kha_conf $m 120 2 1; else ka_conf $m 120 2 1 MASTER; fi
	if [ $bk = kha ]; then kha_conf $b 110 2 1; else ka_conf $b 110 2 1 BACKUP; fi
	# the 120 node first, as in a running cluster that gains a backup
	node_start $m $mk
	t=$(wait_holder $m 8000)
	check "$label: $mk (120) takes the VIP (${t} ms)" [ "$(holders)" = $m ]
	node_start $b $bk
	check "$label: exactly one holder, the 120 node, over 8 s" sample_one $m 8
	check "$label: client reaches the VIP on $m" client_reaches $m
	if [ $mk = kha ]; then
		check "$label: keepalived backup accepted kha-xdp's adverts (no complaint in its log)" \
			[ -z "$(grep -iE 'invalid|mismatch|checksum|too (short|long)|wrong' "$WORK/$b.log")" ]
		check "$label: keepalived stayed BACKUP under kha-xdp" \
			[ "$(grep -c 'Entering MASTER' "$WORK/$b.log")" -eq 0 ]
	else
		check "$label: kha-xdp backup follows keepalived master 10.99.0.1 prio 120" \
			[ "$(status_of $b master) $(status_of $b master_priority)" = "10.99.0.1 120" ]
		check "$label: kha-xdp dropped no keepalived advert" \
			no_drops $b
	fi

	t0=$(now_ms)
	node_crash $m
	t=$(wait_holder $b $KILL_LIMIT $t0)
	check "$label: SIGKILL master -> $bk holds the VIP in ${t} ms (limit $KILL_LIMIT)" \
		[ "$(holders)" = $b -a $t -le $KILL_LIMIT ]
	check "$label: client reaches the VIP on $b after failover" client_reaches $b

	t0=$(now_ms)
	node_start $m $mk
	t=$(wait_holder $m $BACK_LIMIT $t0)
	check "$label: returning $mk 120 preempts in ${t} ms (limit $BACK_LIMIT)" \
		[ "$(holders)" = $m -a $t -le $BACK_LIMIT ]
	check "$label: exactly one holder after preemption" sample_one $m 3
	check "$label: client reaches the VIP on $m again" client_reaches $m

	stop_gap $m $b $STOP_LIMIT
	check "$label: stopped master (priority 0) -> $bk holds the VIP ${GAP} ms after it left $m (limit $STOP_LIMIT)" \
		[ "$(holders)" = $b -a $GAP -le $STOP_LIMIT ]
	check "$label: stopped master removed its VIP" no_vip $m
	node_kill $b TERM
	sleep 0.2
	check "$label: no VIP left after both stopped" [ -z "$(holders)" ]
	rm -f "$WORK"/*.conf "$WORK"/*.status
}

round kha ka
round ka kha
finish
