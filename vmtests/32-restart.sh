#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 3 end to end: the data plane survives the daemon.
# 100 connections stream data through the VIP (a chunk every 50 ms, each
# echoed back and compared) while:
#   - the daemon is killed with SIGKILL: forwarding goes on, no connection
#     breaks, new connections are still balanced on the last table;
#   - the daemon is started again: it adopts the pins, no connection breaks,
#     and it resumes probing (a backend killed now is removed);
#   - SIGHUP with a broken config: the error is logged as file:line, the
#     running config stays, nothing breaks;
#   - SIGHUP with a valid new config (one backend removed): applied, the
#     connections to the backends that stay do not break;
#   - SIGTERM: the daemon exits 0 and leaves no program, pin or socket.
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init e2e

INTER=200 FALL=2 RISE=2 TIMEOUT=200
CHECKS=("check https" "check_path /readyz" "inter $INTER" "fall $FALL" "rise $RISE" "timeout $TIMEOUT")
[ -x "$KHA" ] || lab_die "$KHA not built"
lab_topo 10.213.32 12
# with VRRP off the daemon holds the VIP address itself: let it add it
ip -n "$(lab_ns lb)" addr del "$VIP/32" dev eth0
CONF=$LAB_DIR/kha.conf
lab_conf "$CONF" "${CHECKS[@]}"
lab_daemon "$CONF" || lab_die "kha-xdp run did not start"
check "the daemon (VRRP off) added the VIP address to eth0" \
	grep -q "$VIP/32" <<<"$(ip -n "$(lab_ns lb)" -br addr show eth0)"
lab_wait_healthy 3 5 >/dev/null || lab_die "backends not healthy"
ALL=$(IFS=,; echo "${CLIENTS[*]}")
lab_predict "${BACKENDS[@]}" -- "${CLIENTS[@]}"

# xfer_check WHAT: one new connection per client, all intact and predicted
xfer_check() {
	local bad='' c
	lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$ALL" --bytes 100000 --timeout 3)"
	for c in "${CLIENTS[@]}"; do
		[ "${LANDED[$c]}" = "${PRED[$c]}" ] || bad="$bad ${c##*.}:${LANDED[$c]}"
	done
	check "$1: new connections intact ($SHA_OK/12) and on the predicted backends${bad:+ (bad:$bad)}" \
		test -z "$bad" -a "$SHA_OK" -eq 12
}

# streams: 100 connections from the twelve clients
lab_bg c "$LAB_DIR/stream.log" "$LAB_PY" "$LAB_TOOLS/client.py" stream \
	--to "$VIP:$VPORT" --from "$ALL" --conns 100 --interval 0.05 \
	--stall 3 --until-file "$LAB_DIR/stop"
STREAM_PID=$LAB_LAST_PID
for ((i = 0; i < 200; i++)); do grep -q '^stream established' "$LAB_DIR/stream.log" && break; sleep 0.05; done
est=$(sed -n 's/^stream established //p' "$LAB_DIR/stream.log")
check "100 streaming connections established through the VIP (${est:-0})" test "${est:-0}" = 100

# broken_now: connections the stream client already saw fail (it stops a
# connection's thread at its first error, the summary comes at the end;
# so look for RSTs and stalls on the wire side: the client's TCP stats)
ct_before=$(lab_maps 'd["conntrack"]')

# --- SIGKILL ---------------------------------------------------------------
lab_kill KILL "$LAB_DAEMON_PID"
sleep 1
check "after SIGKILL the XDP program is still attached" \
	grep -q 'prog/xdp' <<<"$(ip -n "$(lab_ns lb)" -d link show eth0)"
xfer_check "daemon dead"

# --- restart: adopt --------------------------------------------------------
mv "$LAB_DIR/daemon.log" "$LAB_DIR/daemon-1.log"
rm -f "$LAB_DIR/ctl.sock"
lab_daemon "$CONF" || lab_die "kha-xdp run did not restart"
ok "daemon restarted on the pinned data plane"
sleep 1
sed 's/^/#   daemon: /' "$LAB_DIR/daemon.log" | head -8
ct_after=$(lab_maps 'd["conntrack"]')
check "the restarted daemon kept the connection table ($ct_after entries, $ct_before before)" \
	test "$ct_after" -ge "$ct_before" -a "$ct_before" -ge 100
xfer_check "daemon restarted"

# it probes again: b3 down is noticed
lab_kill_backend b3
vc=
for c in "${CLIENTS[@]}"; do [ "${PRED[$c]}" = "${BACKENDS[2]}" ] && { vc=$c; break; }; done
ms=$(lab_wait_backend "$vc" '!b3' 5)
check "the restarted daemon probes: a killed backend is removed ($ms ms)" \
	test "$ms" -le $((FALL * INTER + TIMEOUT + 300))
lab_backend b3 b3 "${BACKENDS[2]}"
ms=$(lab_wait_backend "$vc" b3 5)
check "and re-added when it comes back ($ms ms)" test "$ms" -le $((RISE * INTER + TIMEOUT + 300))

# --- SIGHUP with a broken config -------------------------------------------
cp "$CONF" "$LAB_DIR/good.conf"
{
	head -n -1 "$LAB_DIR/good.conf"
	echo "	backend 10.213.32.14:99999"
	echo "}"
} >"$CONF"
bad_line=$(grep -n 99999 "$CONF" | cut -d: -f1)
kill -HUP "$LAB_DAEMON_PID"
sleep 1
grep -i "$CONF" "$LAB_DIR/daemon.log" | sed 's/^/#   daemon: /' | tail -3
check "a broken config on SIGHUP is rejected as $CONF:$bad_line" \
	grep -q "$CONF:$bad_line" "$LAB_DIR/daemon.log"
check "the daemon is still running after the broken reload" kill -0 "$LAB_DAEMON_PID"
check "the running config stays in force (3 backends)" \
	test "$(lab_maps 'd["vips"][0]["nr_healthy"]')" = 3
xfer_check "after the rejected reload"

# --- SIGHUP with a valid config: b3 removed ---------------------------------
grep -v "backend ${BACKENDS[2]}" "$LAB_DIR/good.conf" >"$CONF"
kill -HUP "$LAB_DAEMON_PID"
for ((i = 0; i < 50; i++)); do
	[ "$(lab_maps 'd["vips"][0]["nr_healthy"]')" = 2 ] && break
	sleep 0.05
done
check "a valid config on SIGHUP is applied (2 backends published)" \
	test "$(lab_maps 'd["vips"][0]["nr_healthy"]')" = 2
lab_predict "${BACKENDS[0]}" "${BACKENDS[1]}" -- "${CLIENTS[@]}"
xfer_check "after the reload without b3"

# --- the streams -----------------------------------------------------------
touch "$LAB_DIR/stop"
wait "$STREAM_PID"
grep '^stream conns=' "$LAB_DIR/stream.log" | sed 's/^/#   /'
grep '^stream conn=' "$LAB_DIR/stream.log" | grep -v 'status=ok' | sed 's/^/#   /' | head -5
s12=$(grep '^stream conn=' "$LAB_DIR/stream.log" | grep -v 'backend=b3 ')
n_ok=$(grep -c 'status=ok' <<<"$s12")
n_all=$(grep -c . <<<"$s12")
check "no connection to b1/b2 broke through SIGKILL, restart and both reloads ($n_ok/$n_all)" \
	test "$n_ok" -eq "$n_all" -a "$n_all" -gt 0
# b3's connections died with its process (killed above), not with the daemon
s3=$(grep '^stream conn=' "$LAB_DIR/stream.log" | grep 'backend=b3 ')
lab_log "connections on b3 (killed on purpose): $(grep -c 'status=ok' <<<"$s3") ok of $(grep -c . <<<"$s3")"

# --- SIGTERM ----------------------------------------------------------------
t0=$(lab_now_ms)
lab_kill TERM "$LAB_DAEMON_PID"
rc=$?
lab_log "daemon exited rc=$rc after $(($(lab_now_ms) - t0)) ms"
check "SIGTERM: the daemon exits 0" test $rc -eq 0
check "SIGTERM: no XDP program left on eth0" \
	test -z "$(ip -n "$(lab_ns lb)" -d link show eth0 | grep 'prog/xdp')"
left=$(find "$LAB_PIN" -mindepth 1 2>/dev/null | tr '\n' ' ')
check "SIGTERM: no pin left (${left:-none})" test -z "$left"
check "SIGTERM: control socket removed" test ! -e "$LAB_DIR/ctl.sock"
addrs=$(ip -n "$(lab_ns lb)" -br addr show eth0 | awk '{$1=$2=""; print}')
check "SIGTERM: the VIP address is removed, the LB's own address stays ($addrs)" \
	test -n "$(grep "$LB_ADDR/24" <<<"$addrs")" -a -z "$(grep "$VIP/" <<<"$addrs")"

exit 0
