#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 3, "A drained backend (weight 0) gets no new flows and keeps its
# established ones", through the control socket:
#   - `kha-xdp backend drain b2`: the published table drops to 2 backends,
#     status shows b2 UP + drained with weight 0, new connections of b2's
#     clients go where Maglev puts them without b2, the others do not move;
#   - connections to b2 established before the drain keep streaming;
#   - `kha-xdp backend enable b2`: b2 is back and its clients return;
#   - draining an unknown backend is one line and a non-zero exit;
#   - status --json from the daemon carries health and the drain.
# Probes: TCP, inter 200 ms. The lab is scripts/lab.sh's (bridge, 3 backends).
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init ld

[ -x "$KHA" ] || lab_die "$KHA not built"
lab_topo 10.213.22 12
lab_conf "$LAB_DIR/kha.conf" "check tcp" "inter 200" "fall 2" "rise 2"
lab_daemon "$LAB_DIR/kha.conf" || lab_die "kha-xdp run did not start"
ms=$(lab_wait_healthy 3 5) || lab_die "backends not healthy"
ok "kha-xdp run: three backends published (${ms} ms)"

VICTIM=${BACKENDS[1]}
lab_predict "${BACKENDS[@]}" -- "${CLIENTS[@]}"
declare -A BEFORE=()
for c in "${CLIENTS[@]}"; do BEFORE[$c]=${PRED[$c]}; done

# established connections from every client, streaming through the drain
rm -f "$LAB_DIR/stop"
lab_bg c "$LAB_DIR/stream.log" "$LAB_PY" "$LAB_TOOLS/client.py" stream \
	--to "$VIP:$VPORT" --from "$(IFS=,; echo "${CLIENTS[*]}")" --conns 24 \
	--interval 0.05 --until-file "$LAB_DIR/stop"
STREAM_PID=$LAB_LAST_PID
for ((i = 0; i < 100; i++)); do grep -q '^stream established' "$LAB_DIR/stream.log" && break; sleep 0.05; done
lab_log "$(grep '^stream established' "$LAB_DIR/stream.log")"

# --- drain ---------------------------------------------------------------
out=$(lab_kha lb backend drain "$VICTIM" -c "$LAB_DIR/kha.conf" 2>&1)
rc=$?
lab_log "backend drain $VICTIM: rc=$rc: $out"
check "kha-xdp backend drain $VICTIM: exit 0, says drained" \
	eval '[ $rc -eq 0 ] && grep -q drained <<<"$out"'
check "the published table has 2 backends at once" \
	test "$(lab_maps 'd["vips"][0]["nr_healthy"]')" = 2
js=$(lab_kha lb status --json -c "$LAB_DIR/kha.conf" 2>/dev/null)
b2=$("$LAB_PY" -c '
import json, sys
d = json.loads(sys.argv[1])
b = [b for b in d["vips"][0]["backends"] if b["backend"] == sys.argv[2]][0]
print(b["healthy"], b["drained"], b["weight"], b["check"]["up"], b["connections"] > 0)' "$js" "$VICTIM")
lab_log "status --json, $VICTIM: healthy drained weight up has-conns = $b2"
check "status --json: $VICTIM healthy, drained, weight 0, probe up, connections kept" \
	test "$b2" = "True True 0 True True"

lab_predict "${BACKENDS[0]}" "${BACKENDS[2]}" -- "${CLIENTS[@]}"
lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$(IFS=,; echo "${CLIENTS[*]}")" --bytes 100000)"
moved=0 moved_ok=0 stayed=0 stayed_ok=0
for c in "${CLIENTS[@]}"; do
	if [ "${BEFORE[$c]}" = "$VICTIM" ]; then
		moved=$((moved + 1))
		[ "${LANDED[$c]}" = "${PRED[$c]}" ] && moved_ok=$((moved_ok + 1))
	else
		stayed=$((stayed + 1))
		[ "${LANDED[$c]}" = "${BEFORE[$c]}" ] && stayed_ok=$((stayed_ok + 1))
	fi
done
check "new connections of the drained backend's clients go elsewhere, as predicted ($moved_ok/$moved)" \
	test $moved -gt 0 -a $moved_ok -eq $moved
check "the other clients did not move ($stayed_ok/$stayed), bytes intact ($SHA_OK/12)" \
	test $stayed_ok -eq $stayed -a $SHA_OK -eq 12
# the streams keep exchanging data with the drained backend
e0=$(lab_maps "[b['packets'] for b in d['backends'] if b['addr']=='$VICTIM'][0]")
sleep 1
e1=$(lab_maps "[b['packets'] for b in d['backends'] if b['addr']=='$VICTIM'][0]")
check "established connections to the drained backend still carry packets ($e0 -> $e1)" \
	test "$e1" -gt "$e0"

# --- enable --------------------------------------------------------------
out=$(lab_kha lb backend enable "$VICTIM" -c "$LAB_DIR/kha.conf" 2>&1)
rc=$?
check "kha-xdp backend enable $VICTIM: exit 0" test $rc -eq 0
check "the published table has 3 backends again" \
	test "$(lab_maps 'd["vips"][0]["nr_healthy"]')" = 3
lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$(IFS=,; echo "${CLIENTS[*]}")" --bytes 100000)"
bad=
for c in "${CLIENTS[@]}"; do [ "${LANDED[$c]}" = "${BEFORE[$c]}" ] || bad="$bad $c:${LANDED[$c]}"; done
check "every client is back on its original backend${bad:+ (bad:$bad)}" test -z "$bad"

out=$(lab_kha lb backend drain 10.213.22.99:6443 -c "$LAB_DIR/kha.conf" 2>&1)
rc=$?
lab_log "drain of an unknown backend: rc=$rc: $out"
check "draining an unknown backend: one line, non-zero" \
	test $rc -ne 0 -a "$(grep -c . <<<"$out")" -eq 1

# --- the streams, drained backend included --------------------------------
touch "$LAB_DIR/stop"
wait "$STREAM_PID"
grep '^stream conns=' "$LAB_DIR/stream.log" | sed 's/^/#   /'
on_b2=$(grep '^stream conn=' "$LAB_DIR/stream.log" | grep 'backend=b2 ')
n_ok=$(grep -c 'status=ok' <<<"$on_b2")
n_all=$(grep -c . <<<"$on_b2")
check "connections established to $VICTIM before the drain kept streaming through it ($n_ok/$n_all)" \
	test "$n_all" -gt 0 -a "$n_ok" -eq "$n_all"
all=$(grep '^stream conn=' "$LAB_DIR/stream.log")
check "no established connection broke ($(grep -c 'status=ok' <<<"$all")/$(grep -c . <<<"$all"))" \
	test "$(grep -c 'status=ok' <<<"$all")" -eq "$(grep -c . <<<"$all")"
grep -E 'drain|enable' "$LAB_DIR/daemon.log" | sed 's/^/#   daemon: /'
check "the daemon logged the drain and the enable, one line each" \
	test "$(grep -cE 'drained \(no new flows|enabled by the operator' "$LAB_DIR/daemon.log")" -eq 2
exit 0
