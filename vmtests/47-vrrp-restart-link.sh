#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Two things a running cluster meets: (1) the daemon restarted in "keep"
# mode (systemd restart, upgrade: kha_vrrp_release leaves the VIP, no
# priority 0): the new process adopts the VIP and the keepalived backup
# never takes over; (2) the master's interface goes down: its effective
# priority drops, the backup takes the VIP, and when the link returns the
# 120 node is master again; (3) a reload lowering the priority hands the
# VIP over without a restart.
# the real daemon: SIGUSR2 is its "keep" exit (KHA_VRRP_MODE=driver: SIGQUIT)
KHA_MODE=daemon
source "$(dirname "$0")/40-vrrp-lib.bash"
lab_up

kha_conf n1 120 2 1
ka_conf n2 110 2 1 BACKUP
node_start n1 kha
sleep 0.3
node_start n2 ka
t=$(wait_holder n1 8000)
check "kha-xdp 120 is master (${t} ms)" [ "$(holders)" = n1 ]

# (1) restart keeping the VIP: 1.5 s without adverts, < Master_Down 3.57 s
# (keepalived may have been master for a moment at startup, if kha-xdp's
# load took longer than its 0.3 s head start: count only what follows)
masters_before=$(grep -c 'Entering MASTER' "$WORK/n2.log")
node_exit_keep n1
check "exit in keep mode leaves the VIP on n1" has_vip n1
sleep 1.5
node_start n1 kha
check "restarted kha-xdp adopted the VIP: n1 alone held it all along (4 s)" sample_one n1 4
check "restarted kha-xdp is MASTER (adopted)" \
	[ "$(status_of n1 state) $(status_of n1 last_reason)" = "MASTER adopted the VIPs already on the interface" ]
check "keepalived never became master during the restart" \
	[ "$(grep -c 'Entering MASTER' "$WORK/n2.log")" -eq "$masters_before" ]

# (2) interface down on the master
t0=$(now_ms)
ip -n ${T}n1 link set eth0 down
while ! has_vip n2 && [ $(( $(now_ms) - t0 )) -lt 5000 ]; do sleep 0.02; done
t=$(( $(now_ms) - t0 ))
h=$(has_vip n2 && echo yes)
check "master's link down: keepalived takes the VIP in ${t} ms (limit 4070)" \
	[ $t -le 4070 -a "$h" = yes ]
sleep 0.5
check "kha-xdp lowered its effective priority for the down interface (90)" \
	[ "$(status_of n1 effective_priority)" = 90 ]
ip -n ${T}n1 link set eth0 up
t0=$(now_ms)
t=$(wait_holder n1 5000 $t0)
check "link back: kha-xdp 120 is the one master again in ${t} ms (limit 5000)" \
	[ "$(holders)" = n1 ]
check "effective priority 120 again" [ "$(status_of n1 effective_priority)" = 120 ]
check "client reaches the VIP on n1" client_reaches n1

# (3) reload (SIGHUP) with priority 100: kha_vrrp_reconfigure keeps the
# state, advertises 100 at once, and keepalived's 110 preempts
kha_conf n1 100 2 1
t0=$(now_ms)
kill -HUP "${PID[n1]}"
t=$(wait_holder n2 5000 $t0)
check "reload to priority 100: keepalived 110 preempts in ${t} ms (limit 4070)" \
	[ "$(holders)" = n2 -a $t -le 4070 ]
check "reloaded kha-xdp: configured 100, BACKUP behind 10.99.0.2" \
	[ "$(status_of n1 priority) $(status_of n1 state) $(status_of n1 master)" = "100 BACKUP 10.99.0.2" ]
finish
