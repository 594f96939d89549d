#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# nopreempt in a mixed group: the 120 node, back after a SIGKILL, leaves
# the VIP with the 110 master it finds; it takes over again only when that
# master stops. Both ways round (kha-xdp nopreempt, keepalived nopreempt).
source "$(dirname "$0")/40-vrrp-lib.bash"
lab_up

round() { # round KIND_120 KIND_110
	local hk=$1 lk=$2 t t0 label="$1 120 nopreempt vs $2 110"

	if [ $hk = kha ]; then kha_conf n1 120 2 1 nopreempt; else ka_conf n1 120 2 1 BACKUP nopreempt; fi
	if [ $lk = kha ]; then kha_conf n2 110 2 1; else ka_conf n2 110 2 1 BACKUP; fi
	node_start n1 $hk
	sleep 0.5
	node_start n2 $lk
	t=$(wait_holder n1 8000)
	check "$label: the 120 node is elected first (${t} ms)" [ "$(holders)" = n1 ]

	t0=$(now_ms)
	node_crash n1
	t=$(wait_holder n2 4070 $t0)
	check "$label: SIGKILL -> $lk holds the VIP in ${t} ms (limit 4070)" \
		[ "$(holders)" = n2 -a $t -le 4070 ]
	node_start n1 $hk
	check "$label: returning 120 node does not preempt (VIP stays on n2 for 8 s)" \
		sample_one n2 8
	check "$label: client still reaches the VIP on n2" client_reaches n2
	if [ $hk = kha ]; then
		check "$label: kha-xdp is BACKUP behind master 10.99.0.2 (110)" \
			[ "$(status_of n1 state) $(status_of n1 master) $(status_of n1 master_priority)" = "BACKUP 10.99.0.2 110" ]
	fi
	stop_gap n2 n1 1000
	check "$label: 110 master stopped -> 120 node holds the VIP ${GAP} ms after it left n2 (limit 1000)" \
		[ "$(holders)" = n1 -a $GAP -le 1000 ]
	node_kill n1 TERM
	rm -f "$WORK"/*.conf "$WORK"/*.status
}

round kha ka
round ka kha
finish
