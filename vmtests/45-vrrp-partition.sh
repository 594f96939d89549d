#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A partition between the two LB nodes (bridge port isolation: each still
# reaches the client, not each other) makes two masters; healing it leaves
# one master within one advert interval, the winner re-announces the VIP
# with gratuitous ARP, and the client reaches the winner. Mixed group
# (kha-xdp 120 / keepalived 110, v2 1 s), then two kha-xdp nodes on v3.
source "$(dirname "$0")/40-vrrp-lib.bash"
lab_up

isolate() { # isolate on|off
	bridge -n ${T}br link set dev pn1 isolated $1
	bridge -n ${T}br link set dev pn2 isolated $1
}

round() { # round LABEL KIND2 VERSION ADVERT HEAL_LIMIT_MS
	local label=$1 k2=$2 ver=$3 adv=$4 limit=$5 t t0 garp rx heard

	# no delayed second burst: every GARP counted after healing is the
	# answer to the loser's advert
	kha_conf n1 120 $ver $adv "garp_master_delay 0"
	if [ $k2 = kha ]; then kha_conf n2 110 $ver $adv "garp_master_delay 0"; else ka_conf n2 110 $ver $adv BACKUP; fi
	node_start n1 kha
	sleep 0.3
	node_start n2 $k2
	t=$(wait_holder n1 8000)
	check "$label: kha-xdp 120 is master (${t} ms)" [ "$(holders)" = n1 ]
	check "$label: client reaches n1" client_reaches n1

	isolate on
	t0=$(now_ms)
	while [ "$(holders)" != "n1 n2" ] && [ $(( $(now_ms) - t0 )) -lt 8000 ]; do sleep 0.02; done
	check "$label: partitioned, both nodes hold the VIP (split brain)" [ "$(holders)" = "n1 n2" ]
	# the client now follows n2's gratuitous ARP
	check "$label: during the partition the client reaches n2" client_reaches n2
	sleep 1

	garp=$(status_of n1 garp_sent)
	rx=$(status_of n1 rx_adverts)
	isolate off
	t0=$(now_ms)
	t=$(wait_holder n1 $limit $t0)
	check "$label: healed: one master (n1) within one advert interval: ${t} ms (limit $limit)" \
		[ "$(holders)" = n1 -a $t -le $limit ]
	sleep 0.3
	heard=$(( $(status_of n1 rx_adverts) - rx ))
	if [ $k2 = kha ] || [ $heard -gt 0 ]; then
		# a kha-xdp loser always sends a parting advert; keepalived's
		# advert reaches the winner if it came first
		check "$label: the winner heard the loser ($heard adverts) and sent gratuitous ARP ($garp -> $(status_of n1 garp_sent))" \
			[ $heard -gt 0 -a "$(status_of n1 garp_sent)" -ge $((garp + 5)) ]
	else
		# the winner's advert came first and keepalived yielded
		# silently: nothing reached the winner to answer
		check "$label: keepalived yielded on the winner's first advert (its log)" \
			grep -q "Master received advert from 10.99.0.1 with higher priority 120" "$WORK/n2.log"
	fi
	check "$label: client reaches the VIP on the winner" client_reaches n1
	check "$label: exactly one holder after healing" sample_one n1 3
	node_kill n1 TERM
	node_kill n2 TERM
	rm -f "$WORK"/*.conf "$WORK"/*.status
}

# one advert interval + 150 ms of polling and process scheduling slack
round "mixed v2" ka 2 1 1150
round "kha v3 100 ms" kha 3 0.1 250
finish
