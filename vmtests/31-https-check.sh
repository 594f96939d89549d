#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 3 end to end: why the apiserver needs an HTTPS check.
# Two VIPs on the same three backends: VIP .100 probes HTTPS GET /readyz,
# VIP .101 probes TCP connect (haproxy's plain `check`).
#   - a backend frozen with SIGSTOP (a hung apiserver: the kernel still
#     completes the handshake) stays up for the TCP check and is removed
#     from the HTTPS VIP within fall x inter + timeout, with a timeout
#     reason; it comes back after SIGCONT;
#   - a backend whose /readyz answers 500 is removed with L7STS.
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init e2e

INTER=200 FALL=2 RISE=2 TIMEOUT=200
[ -x "$KHA" ] || lab_die "$KHA not built"
lab_topo 10.213.31 12
VIP2=10.213.31.101
ip -n "$(lab_ns lb)" addr add "$VIP2/32" dev eth0

checks="inter $INTER
	fall $FALL
	rise $RISE
	timeout $TIMEOUT"
cat >"$LAB_DIR/kha.conf" <<EOF
interface eth0
xdp_mode native
pin_root $LAB_PIN
control_socket $LAB_DIR/ctl.sock
local_address $LB_ADDR
local_clients no
vip $VIP:$VPORT {
	check https
	check_path /readyz
	$checks
	backend ${BACKENDS[0]}
	backend ${BACKENDS[1]}
	backend ${BACKENDS[2]}
}
vip $VIP2:$VPORT {
	check tcp
	$checks
	backend ${BACKENDS[0]}
	backend ${BACKENDS[1]}
	backend ${BACKENDS[2]}
}
EOF
lab_daemon "$LAB_DIR/kha.conf" || lab_die "kha-xdp run did not start"

healthy() { lab_vip_healthy "$1"; }
for ((i = 0; i < 100; i++)); do
	[ "$(healthy "$VIP")" = 3 ] && [ "$(healthy "$VIP2")" = 3 ] && break
	sleep 0.05
done
check "both VIPs publish three healthy backends" \
	test "$(healthy "$VIP")" = 3 -a "$(healthy "$VIP2")" = 3

lab_predict "${BACKENDS[@]}" -- "${CLIENTS[@]}"
vc=
for c in "${CLIENTS[@]}"; do [ "${PRED[$c]}" = "${BACKENDS[1]}" ] && { vc=$c; break; }; done
[ -n "$vc" ] || lab_die "no client predicted on b2"
r=$(lab_client c probe --to "$VIP:$VPORT" --from "$vc")
check "client $vc reaches b2 through the HTTPS-checked VIP ($r)" grep -q "backend=b2 " <<<"$r"

# --- freeze b2 -----------------------------------------------------------
lab_kill_backend b2 STOP
limit=$((FALL * INTER + TIMEOUT + 300))
ms=$(lab_wait_healthy 2 5 "$VIP")
check "a frozen backend is removed from the HTTPS-checked VIP ($ms ms <= $limit ms)" \
	test "$ms" -le $limit
r=$(lab_client c probe --to "$VIP:$VPORT" --from "$vc")
moved=no
grep -q "result=connected" <<<"$r" && ! grep -q "backend=b2 " <<<"$r " && moved=yes
check "its clients now reach another backend ($r)" test $moved = yes
sleep 0.5
tcp=$(lab_exec lb "$LAB_PY" -c "import socket; socket.create_connection(('${BACKENDS[1]%:*}', $BPORT), 1); print('connected')" 2>&1)
check "the frozen backend still accepts TCP connections ($tcp)" test "$tcp" = connected
check "and stays in the TCP-checked VIP ($(healthy "$VIP2") healthy) while the HTTPS VIP has $(healthy "$VIP")" \
	test "$(healthy "$VIP2")" = 3 -a "$(healthy "$VIP")" = 2
r=$(lab_client c probe --to "$VIP2:$VPORT" --from "$vc" --timeout 1)
lab_log "through the TCP-checked VIP: $r (a hung apiserver, what haproxy's check would keep)"
grep -E "${BACKENDS[1]//./\\.}" "$LAB_DIR/daemon.log" | sed 's/^/#   daemon: /' | tail -4
check "the daemon logged a timeout reason (L6TOUT/L7TOUT) for the frozen backend" \
	grep -qE "L[67]TOUT" "$LAB_DIR/daemon.log"

kill -CONT "${LAB_BACKEND_PID[b2]}"
ms=$(lab_wait_healthy 3 5 "$VIP")
hi=$((RISE * INTER + TIMEOUT + 300))
check "thawed backend re-added ($ms ms <= $hi ms)" test "$ms" -le $hi
r=$(lab_client c probe --to "$VIP:$VPORT" --from "$vc")
check "its clients are back on it ($r)" grep -q "backend=b2 " <<<"$r "

# --- /readyz 500 ---------------------------------------------------------
vc3=
for c in "${CLIENTS[@]}"; do [ "${PRED[$c]}" = "${BACKENDS[2]}" ] && { vc3=$c; break; }; done
rm -f "$LAB_DIR/ready-b3"
ms=$(lab_wait_healthy 2 5 "$VIP")
check "a backend whose /readyz answers 500 is removed ($ms ms <= $limit ms)" test "$ms" -le $limit
r=$(lab_client c probe --to "$VIP:$VPORT" --from "$vc3")
moved=no
grep -q "result=connected" <<<"$r" && ! grep -q "backend=b3 " <<<"$r " && moved=yes
check "its clients now reach another backend ($r)" test $moved = yes
sleep 0.3
check "a 500 is logged as L7STS 500" grep -qE "L7STS 500|L7STS.*500" "$LAB_DIR/daemon.log"
check "the TCP-checked VIP keeps it" test "$(healthy "$VIP2")" = 3
touch "$LAB_DIR/ready-b3"
ms=$(lab_wait_healthy 3 5 "$VIP")
check "it is re-added once /readyz answers 200 again ($ms ms <= $hi ms)" test "$ms" -le $hi
r=$(lab_client c probe --to "$VIP:$VPORT" --from "$vc3")
check "its clients are back on it ($r)" grep -q "backend=b3 " <<<"$r "

exit 0
