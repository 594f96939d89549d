#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 3 end to end: `kha-xdp backend drain|enable` through the running
# daemon's control socket. A drained backend (weight 0) gets no new flows,
# its clients' new connections go where Maglev puts them without it, and
# its established connections keep flowing; `enable` brings it back.
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init e2e

[ -x "$KHA" ] || lab_die "$KHA not built"
lab_topo 10.213.34 12
CONF=$LAB_DIR/kha.conf
lab_conf "$CONF" "check https" "check_path /readyz" "inter 200" "fall 2" "rise 2" "timeout 200"
lab_daemon "$CONF" || lab_die "kha-xdp run did not start"
lab_wait_healthy 3 5 >/dev/null || lab_die "backends not healthy"
ALL=$(IFS=,; echo "${CLIENTS[*]}")
DRAIN=${BACKENDS[1]}
lab_predict "${BACKENDS[@]}" -- "${CLIENTS[@]}"
declare -A BEFORE=()
for c in "${CLIENTS[@]}"; do BEFORE[$c]=${PRED[$c]}; done

lab_bg c "$LAB_DIR/stream.log" "$LAB_PY" "$LAB_TOOLS/client.py" stream \
	--to "$VIP:$VPORT" --from "$ALL" --conns 24 --interval 0.05 \
	--until-file "$LAB_DIR/stop"
STREAM_PID=$LAB_LAST_PID
for ((i = 0; i < 100; i++)); do grep -q '^stream established' "$LAB_DIR/stream.log" && break; sleep 0.05; done
lab_log "$(grep '^stream established' "$LAB_DIR/stream.log")"

out=$(lab_kha lb backend drain "$DRAIN" -c "$CONF" 2>&1)
rc=$?
lab_log "backend drain $DRAIN: rc=$rc $out"
check "kha-xdp backend drain $DRAIN succeeds" test $rc -eq 0
ms=$(lab_wait_healthy 2 3)
check "the drained backend leaves the table ($ms ms)" test "$(lab_vip_healthy)" = 2
fl=$(lab_maps "[b['flags'] + ' weight=' + str(b['weight']) for b in d['backends'] if b['addr']=='$DRAIN'][0]")
check "it stays present and healthy with weight 0 ($fl)" test "$fl" = "present,healthy weight=0"

lab_predict "${BACKENDS[0]}" "${BACKENDS[2]}" -- "${CLIENTS[@]}"
lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$ALL" --bytes 100000)"
bad=
for c in "${CLIENTS[@]}"; do [ "${LANDED[$c]}" = "${PRED[$c]}" ] || bad="$bad ${c##*.}:${LANDED[$c]}"; done
check "new connections avoid the drained backend and land as Maglev predicts without it${bad:+ (bad:$bad)}" \
	test -z "$bad" -a "$SHA_OK" -eq 12
stayed=0 n=0
for c in "${CLIENTS[@]}"; do
	[ "${BEFORE[$c]}" = "$DRAIN" ] && continue
	n=$((n + 1))
	[ "${LANDED[$c]}" = "${BEFORE[$c]}" ] && stayed=$((stayed + 1))
done
check "the other backends' clients did not move ($stayed/$n)" test $stayed -eq $n

sout=$(lab_kha lb status -c "$CONF" 2>&1)
grep -F "$DRAIN" <<<"$sout" | sed 's/^/#   /'
check "kha-xdp status shows the backend drained" grep -qiE "${DRAIN//./\\.}.*drain" <<<"$sout"

# established connections on the drained backend keep flowing
e0=$(lab_maps "[b['packets'] for b in d['backends'] if b['addr']=='$DRAIN'][0]")
sleep 1
e1=$(lab_maps "[b['packets'] for b in d['backends'] if b['addr']=='$DRAIN'][0]")
check "established connections to the drained backend still carry packets ($e0 -> $e1)" \
	test "$e1" -gt "$e0"

out=$(lab_kha lb backend enable "$DRAIN" -c "$CONF" 2>&1)
check "kha-xdp backend enable $DRAIN succeeds ($out)" test $? -eq 0
ms=$(lab_wait_healthy 3 3)
check "it is back in the table ($ms ms)" test "$(lab_vip_healthy)" = 3
lab_predict "${BACKENDS[@]}" -- "${CLIENTS[@]}"
lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$ALL" --bytes 100000)"
bad=
for c in "${CLIENTS[@]}"; do [ "${LANDED[$c]}" = "${BEFORE[$c]}" ] || bad="$bad ${c##*.}:${LANDED[$c]}"; done
check "every client is back on its original backend${bad:+ (bad:$bad)}" test -z "$bad"

touch "$LAB_DIR/stop"
wait "$STREAM_PID"
grep '^stream conns=' "$LAB_DIR/stream.log" | sed 's/^/#   /'
nd=$(grep '^stream conn=' "$LAB_DIR/stream.log" | grep -c 'backend=b2 ')
nd_ok=$(grep '^stream conn=' "$LAB_DIR/stream.log" | grep 'backend=b2 ' | grep -c 'status=ok')
n_ok=$(grep -c '^stream conn=.*status=ok' "$LAB_DIR/stream.log")
check "no established connection broke across drain and enable ($n_ok/24, $nd_ok/$nd on the drained backend)" \
	test "$n_ok" -eq 24 -a "$nd" -gt 0

exit 0
