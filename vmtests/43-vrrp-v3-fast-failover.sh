#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Two kha-xdp nodes, VRRPv3 with 100 ms adverts: the master SIGKILLed,
# the backup holds the VIP in under 0.5 s, over 10 trials (median and
# worst printed). Then a mixed v3 group: keepalived master at 100 ms,
# kha-xdp configured with 1 s adopts the master's interval and fails over
# just as fast.
source "$(dirname "$0")/40-vrrp-lib.bash"
lab_up

LIMIT=500
TRIALS=${VRRP_TRIALS:-10}
kha_conf n1 120 3 0.1
kha_conf n2 110 3 0.1
node_start n2 kha
node_start n1 kha
t=$(wait_holder n1 3000)
check "v3 100 ms: the 120 node is master (${t} ms)" [ "$(holders)" = n1 ]
check "v3 100 ms: exactly one holder over 3 s" sample_one n1 3

times=()
for i in $(seq 1 $TRIALS); do
	# a random phase within the advert interval
	sleep 0.$((RANDOM % 10))
	t0=$(now_ms)
	node_crash n1
	t=$(wait_holder n2 2000 $t0)
	[ "$(holders)" = n2 ] || t=99999
	times+=($t)
	echo "# trial $i: failover in $t ms"
	node_start n1 kha
	wait_holder n1 3000 >/dev/null
	sleep 0.5
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
median=${sorted[$((TRIALS / 2))]}
worst=${sorted[$((TRIALS - 1))]}
echo "# v3 100 ms failover over $TRIALS trials: median ${median} ms, worst ${worst} ms"
check "v3 100 ms: failover after SIGKILL under ${LIMIT} ms in all $TRIALS trials (median ${median} ms, worst ${worst} ms)" \
	[ $worst -lt $LIMIT ]
check "v3 100 ms: the backup adopted and reports the master's 10 cs" \
	[ "$(status_of n2 master_adver_int_cs)" = 10 ]
node_kill n1 TERM
node_kill n2 TERM
rm -f "$WORK"/*.conf "$WORK"/*.status

# mixed v3: keepalived 120 at 0.1 s, kha-xdp 110 configured with 1 s
ka_conf n1 120 3 0.1 BACKUP
kha_conf n2 110 3 1
node_start n2 kha
node_start n1 ka
t=$(wait_holder n1 5000)
check "v3 mixed: keepalived 120 (100 ms) is master (${t} ms)" [ "$(holders)" = n1 ]
sleep 1
check "v3 mixed: kha-xdp adopted keepalived's 10 cs interval" \
	[ "$(status_of n2 master_adver_int_cs)" = 10 ]
check "v3 mixed: kha-xdp dropped no keepalived v3 advert" \
	no_drops n2
t0=$(now_ms)
node_crash n1
t=$(wait_holder n2 2000 $t0)
check "v3 mixed: keepalived SIGKILLed -> kha-xdp in ${t} ms (limit $LIMIT)" \
	[ "$(holders)" = n2 -a $t -lt $LIMIT ]
# and keepalived as the backup of a 100 ms kha-xdp master
node_kill n2 TERM
rm -f "$WORK"/n2.status
kha_conf n2 130 3 0.1
node_start n1 ka
node_start n2 kha
t=$(wait_holder n2 5000)
check "v3 mixed: kha-xdp 130 master over keepalived (${t} ms)" [ "$(holders)" = n2 ]
sleep 1
check "v3 mixed: keepalived accepted kha-xdp's v3 adverts (no complaint in its log)" \
	[ -z "$(grep -iE 'invalid|mismatch|checksum|too (short|long)|wrong' "$WORK/n1.log")" ]
t0=$(now_ms)
node_crash n2
t=$(wait_holder n1 2000 $t0)
check "v3 mixed: kha-xdp SIGKILLed -> keepalived in ${t} ms (limit $LIMIT)" \
	[ "$(holders)" = n1 -a $t -lt $LIMIT ]
finish
