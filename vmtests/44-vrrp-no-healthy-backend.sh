#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Effective priority (keepalived's track weight, replacing the
# `killall -0 haproxy` script): the kha-xdp master (120, track_weight 30)
# loses every backend -> advertises 90 -> keepalived's 110 backup takes the
# VIP; backends back -> 120 again and kha-xdp preempts. The notify command
# runs (no shell) with MASTER / BACKUP / STOP.
#
# Runs the real daemon: its health checks (TCP, inter 200 ms, fall 2) see
# the node's only backend die. (KHA_VRRP_MODE=driver signals the fault to
# the driver instead, as the daemon does through kha_vrrp_set_faults.)
KHA_MODE=daemon
source "$(dirname "$0")/40-vrrp-lib.bash"
lab_up

cat > "$WORK/notify" <<SH
#!/bin/sh
echo "\$1" >> "$WORK/notify.out"
SH
chmod +x "$WORK/notify"

kha_conf n1 120 2 1 "track_weight 30" "notify $WORK/notify"
ka_conf n2 110 2 1 BACKUP
node_start n1 kha
sleep 0.3
node_start n2 ka
t=$(wait_holder n1 8000)
check "kha-xdp 120 is master (${t} ms)" [ "$(holders)" = n1 ]
check "effective priority 120 while backends are healthy" \
	[ "$(status_of n1 effective_priority)" = 120 ]

t0=$(now_ms)
backends_fail n1
t=$(wait_holder n2 5000 $t0)
# detection (2 failed checks, 200 ms apart) + 3 x 1 s + skew + 0.5 s
check "no healthy backend: keepalived 110 takes the VIP in ${t} ms (limit 4470)" \
	[ "$(holders)" = n2 -a $t -le 4470 ]
check "kha-xdp advertises effective priority 90 (120 - 30), configured 120" \
	[ "$(status_of n1 effective_priority) $(status_of n1 priority)" = "90 120" ]
check "kha-xdp is BACKUP behind keepalived 10.99.0.2" \
	[ "$(status_of n1 state) $(status_of n1 master)" = "BACKUP 10.99.0.2" ]
check "exactly one holder (keepalived) while kha-xdp has no backend" sample_one n2 4
check "client reaches the VIP on n2" client_reaches n2

t0=$(now_ms)
backends_heal n1
t=$(wait_holder n1 5000 $t0)
# detection (rise 2) + Master_Down_Interval of 120 (3.53 s) + 0.5 s
check "backends healthy again: kha-xdp 120 preempts in ${t} ms (limit 4430)" \
	[ "$(holders)" = n1 -a $t -le 4430 ]
check "client reaches the VIP on n1" client_reaches n1

node_kill n1 TERM
sleep 0.3
check "notify ran with each state, in order" \
	[ "$(tr '\n' ' ' < "$WORK/notify.out")" = "BACKUP MASTER BACKUP MASTER STOP " ]
finish
