#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 3 end to end, health probes driving the Maglev table:
#   - `kha-xdp run` publishes the three healthy backends;
#   - a killed backend is removed within fall x inter + timeout, and only
#     its clients move (to the backend Maglev predicts without it), while
#     established connections to the other backends keep streaming;
#   - the restarted backend is re-added after `rise` successful checks and
#     its clients come back to it;
#   - `kha-xdp status` reports the transitions.
# Probes: HTTPS GET /readyz, inter 200 ms, fall 2, rise 2, timeout 200 ms.
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init e2e

INTER=200 FALL=2 RISE=2 TIMEOUT=200
[ -x "$KHA" ] || lab_die "$KHA not built"
lab_topo 10.213.30 12
lab_conf "$LAB_DIR/kha.conf" "check https" "check_path /readyz" \
	"inter $INTER" "fall $FALL" "rise $RISE" "timeout $TIMEOUT"
lab_daemon "$LAB_DIR/kha.conf" || lab_die "kha-xdp run did not start"
ok "kha-xdp run started and attached eth0"

ms=$(lab_wait_healthy 3 5)
check "all three backends published after their first checks (${ms} ms)" \
	test "$(lab_maps 'd["vips"][0]["nr_healthy"]')" = 3

lab_predict "${BACKENDS[@]}" -- "${CLIENTS[@]}"
declare -A BEFORE=()
for c in "${CLIENTS[@]}"; do BEFORE[$c]=${PRED[$c]}; done
lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$(IFS=,; echo "${CLIENTS[*]}")" --bytes 200000)"
bad=
for c in "${CLIENTS[@]}"; do [ "${LANDED[$c]}" = "${PRED[$c]}" ] || bad="$bad $c:${LANDED[$c]}"; done
check "every client lands on its predicted backend (intact: $SHA_OK/12)${bad:+ bad:$bad}" \
	test -z "$bad" -a $SHA_OK -eq 12

# the victim: b2, and one of its clients
VICTIM=${BACKENDS[1]}
vc=
for c in "${CLIENTS[@]}"; do [ "${PRED[$c]}" = "$VICTIM" ] && { vc=$c; break; }; done
[ -n "$vc" ] || lab_die "no client predicted on $VICTIM"

# established connections from every client, streaming through the change
rm -f "$LAB_DIR/stop"
lab_bg c "$LAB_DIR/stream.log" "$LAB_PY" "$LAB_TOOLS/client.py" stream \
	--to "$VIP:$VPORT" --from "$(IFS=,; echo "${CLIENTS[*]}")" --conns 24 \
	--interval 0.05 --until-file "$LAB_DIR/stop"
STREAM_PID=$LAB_LAST_PID
for ((i = 0; i < 100; i++)); do grep -q '^stream established' "$LAB_DIR/stream.log" && break; sleep 0.05; done
lab_log "$(grep '^stream established' "$LAB_DIR/stream.log")"

# --- kill b2 -----------------------------------------------------------
lab_kill_backend b2
limit=$((FALL * INTER + TIMEOUT + 250))
ms=$(lab_wait_backend "$vc" '!b2' 5)
lab_log "client $vc (was on b2) served by another backend after $ms ms"
check "killed backend removed within fall x inter + timeout ($ms ms <= $limit ms)" \
	test "$ms" -le $limit
check "the published table now has 2 backends" test "$(lab_maps 'd["vips"][0]["nr_healthy"]')" = 2

lab_predict "${BACKENDS[0]}" "${BACKENDS[2]}" -- "${CLIENTS[@]}"
lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$(IFS=,; echo "${CLIENTS[*]}")" --bytes 200000)"
moved_ok=0 stayed_ok=0 moved=0 stayed=0
for c in "${CLIENTS[@]}"; do
	if [ "${BEFORE[$c]}" = "$VICTIM" ]; then
		moved=$((moved + 1))
		[ "${LANDED[$c]}" = "${PRED[$c]}" ] && moved_ok=$((moved_ok + 1))
	else
		stayed=$((stayed + 1))
		[ "${LANDED[$c]}" = "${BEFORE[$c]}" ] && stayed_ok=$((stayed_ok + 1))
	fi
done
check "clients of the other backends did not move ($stayed_ok/$stayed)" test $stayed_ok -eq $stayed
check "clients of the dead backend moved to Maglev's choice without it ($moved_ok/$moved)" \
	test $moved_ok -eq $moved -a $moved -gt 0
check "connections after the failover deliver their bytes intact ($SHA_OK/12)" test $SHA_OK -eq 12

grep -E "${VICTIM//./\\.}" "$LAB_DIR/daemon.log" | sed 's/^/#   daemon: /' | tail -5
check "the daemon logged the transition with haproxy's reason (L4CON)" \
	grep -qE "${VICTIM//./\\.}.*L4CON|L4CON.*${VICTIM//./\\.}" "$LAB_DIR/daemon.log"

# --- bring b2 back -------------------------------------------------------
lab_backend b2 b2 "$VICTIM"
ms=$(lab_wait_backend "$vc" b2 5)
lab_log "client $vc back on b2 after $ms ms"
lo=$(((RISE - 1) * INTER - 100))
hi=$((RISE * INTER + TIMEOUT + 250))
check "restarted backend re-added after $RISE successful checks ($lo <= $ms <= $hi ms)" \
	test "$ms" -ge $lo -a "$ms" -le $hi
lab_predict "${BACKENDS[@]}" -- "${CLIENTS[@]}"
lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$(IFS=,; echo "${CLIENTS[*]}")" --bytes 200000)"
bad=
for c in "${CLIENTS[@]}"; do [ "${LANDED[$c]}" = "${BEFORE[$c]}" ] || bad="$bad $c:${LANDED[$c]}"; done
check "every client is back on its original backend${bad:+ (bad:$bad)}" test -z "$bad"

# --- the streams ---------------------------------------------------------
touch "$LAB_DIR/stop"
wait "$STREAM_PID"
grep '^stream conns=' "$LAB_DIR/stream.log" | sed 's/^/#   /'
others=$(grep '^stream conn=' "$LAB_DIR/stream.log" | grep -v 'backend=b2 ')
nb=$(grep -c 'status=ok' <<<"$others")
nt=$(grep -c . <<<"$others")
check "established connections to the surviving backends never broke ($nb/$nt)" \
	test "$nb" -eq "$nt" -a "$nt" -gt 0

sout=$(lab_kha lb status -c "$LAB_DIR/kha.conf" 2>&1)
echo "$sout" | sed 's/^/#   /'
check "kha-xdp status shows the three backends up" \
	test "$(grep -cE "10\.213\.30\.1[123]:6443" <<<"$sout")" -ge 3

exit 0
