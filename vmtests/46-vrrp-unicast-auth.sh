#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Unicast peers (clouds that block multicast) and v2 simple-password
# authentication, against keepalived: the group forms and fails over both
# ways; keepalived's v3 unicast checksums, current and old style, are
# accepted; a peer with the wrong password is ignored and counted, never
# obeyed.
source "$(dirname "$0")/40-vrrp-lib.bash"
lab_up

KA_UNI1=$'unicast_src_ip 10.99.0.1\n\tunicast_peer {\n\t\t10.99.0.2\n\t}'
KA_AUTH=$'authentication {\n\t\tauth_type PASS\n\t\tauth_pass s3cret\n\t}'
KHA_UNI2=("unicast_src_ip 10.99.0.2" "unicast_peer 10.99.0.1")

# v2 unicast + auth: keepalived 120 master, kha-xdp 110 backup
ka_conf n1 120 2 1 BACKUP "$KA_UNI1" "$KA_AUTH"
kha_conf n2 110 2 1 "${KHA_UNI2[@]}" "auth_pass s3cret"
node_start n2 kha
node_start n1 ka
t=$(wait_holder n1 8000)
check "v2 unicast+auth: keepalived 120 master (${t} ms)" [ "$(holders)" = n1 ]
check "v2 unicast+auth: exactly one holder over 4 s" sample_one n1 4
check "v2 unicast+auth: kha-xdp follows master 10.99.0.1 (120)" \
	[ "$(status_of n2 state) $(status_of n2 master) $(status_of n2 master_priority)" = "BACKUP 10.99.0.1 120" ]
check "v2 unicast+auth: kha-xdp dropped no advert" no_drops n2
t0=$(now_ms)
node_crash n1
t=$(wait_holder n2 4070 $t0)
check "v2 unicast+auth: keepalived SIGKILLed -> kha-xdp in ${t} ms (limit 4070)" \
	[ "$(holders)" = n2 -a $t -le 4070 ]
t0=$(now_ms)
node_start n1 ka
t=$(wait_holder n1 4100 $t0)
check "v2 unicast+auth: keepalived 120 returns and preempts back (${t} ms)" \
	[ "$(holders)" = n1 ]
check "v2 unicast+auth: keepalived did not complain about kha-xdp's adverts" \
	[ -z "$(grep -iE 'invalid|mismatch|checksum|too (short|long)|wrong|passwd' "$WORK/n1.log")" ]
node_kill n1 TERM
node_kill n2 TERM
rm -f "$WORK"/*.conf "$WORK"/*.status

# wrong password: ignored and counted; kha-xdp stays master
ka_conf n1 130 2 1 BACKUP "$KA_UNI1" $'authentication {\n\t\tauth_type PASS\n\t\tauth_pass other\n\t}'
kha_conf n2 110 2 1 "${KHA_UNI2[@]}" "auth_pass s3cret"
since=$(date +%s.%N)
node_start n2 kha
node_start n1 ka
# keepalived ignores ours too and becomes master (it then re-arms its
# advert timer on each of our adverts, so it sends few): every advert it
# sent (counted on the segment) must be counted as auth_failure
sleep 6
# silence keepalived first (SIGKILL: no shutdown advert), then let kha-xdp
# take in what is on the wire: counting while adverts still flow raced
# (one sent between the two reads)
node_crash n1
sleep 0.5
sent=$(tcpdump -r "$WORK/segment.pcap" -nn -tt 'src 10.99.0.1 and ip proto 112' 2>/dev/null |
	awk -v s=$since '$1 > s' | wc -l)
check "wrong password: all $sent keepalived adverts on the wire dropped as auth_failure ($(status_of n2 drops.auth_failure))" \
	[ "$sent" -ge 1 -a "$(status_of n2 drops.auth_failure)" = "$sent" ]
check "wrong password: never acted on (kha-xdp MASTER, no master learned, rx 0)" \
	[ "$(status_of n2 state) $(status_of n2 rx_adverts)" = "MASTER 0" ]
node_kill n1 TERM
node_kill n2 TERM
rm -f "$WORK"/*.conf "$WORK"/*.status

# v3 unicast: keepalived's current checksum, then old_unicast_checksum
for variant in current old; do
	extra=""
	[ $variant = old ] && extra="old_unicast_checksum"
	ka_conf n1 120 3 1 BACKUP "$KA_UNI1" "$extra"
	kha_conf n2 110 3 1 "${KHA_UNI2[@]}"
	node_start n2 kha
	node_start n1 ka
	t=$(wait_holder n1 8000)
	sleep 2
	check "v3 unicast ($variant checksum): kha-xdp follows keepalived 10.99.0.1 (120)" \
		[ "$(holders) $(status_of n2 state) $(status_of n2 master)" = "n1 BACKUP 10.99.0.1" ]
	check "v3 unicast ($variant checksum): kha-xdp dropped no advert" no_drops n2
	t0=$(now_ms)
	node_crash n1
	t=$(wait_holder n2 4070 $t0)
	check "v3 unicast ($variant checksum): failover to kha-xdp in ${t} ms (limit 4070)" \
		[ "$(holders)" = n2 -a $t -le 4070 ]
	node_kill n2 TERM
	rm -f "$WORK"/*.conf "$WORK"/*.status
done
finish
