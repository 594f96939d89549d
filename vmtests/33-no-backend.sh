#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Issue 3 end to end: when no backend is healthy a new connection to the
# VIP is refused at once (TCP RST from the data plane), not left to time
# out, and the refusal is counted; service resumes when a backend returns.
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init e2e

INTER=200 FALL=2 RISE=2 TIMEOUT=200
[ -x "$KHA" ] || lab_die "$KHA not built"
lab_topo 10.213.33 4
lab_conf "$LAB_DIR/kha.conf" "check https" "check_path /readyz" \
	"inter $INTER" "fall $FALL" "rise $RISE" "timeout $TIMEOUT"
lab_daemon "$LAB_DIR/kha.conf" || lab_die "kha-xdp run did not start"
lab_wait_healthy 3 5 >/dev/null || lab_die "backends not healthy"
r=$(lab_client c probe --to "$VIP:$VPORT" --from "${CLIENTS[0]}")
check "the VIP serves while backends are healthy ($r)" grep -q "result=connected" <<<"$r"

for b in b1 b2 b3; do lab_kill_backend $b; done
ms=$(lab_wait_healthy 0 5)
check "all backends down: the published table is empty after $ms ms" \
	test "$(lab_maps 'd["vips"][0]["nr_healthy"]')" = 0

rst0=$(lab_maps 'd["reasons"].get("rst_no_backend", 0)')
refused=0
for c in "${CLIENTS[@]}"; do
	r=$(lab_client c probe --to "$VIP:$VPORT" --from "$c" --timeout 3)
	lab_log "$c: $r"
	ms=$(sed -n 's/.* ms=\([0-9]*\)/\1/p' <<<"$r")
	grep -q "result=refused" <<<"$r" && [ "${ms:-9999}" -le 100 ] && refused=$((refused + 1))
done
check "every new connection is refused at once (RST within 100 ms): $refused/${#CLIENTS[@]}" \
	test $refused -eq ${#CLIENTS[@]}
rst1=$(lab_maps 'd["reasons"].get("rst_no_backend", 0)')
check "refusals are counted (rst_no_backend $rst0 -> $rst1)" \
	test "$rst1" -ge $((rst0 + ${#CLIENTS[@]}))
sout=$(lab_kha lb status -c "$LAB_DIR/kha.conf" 2>&1)
echo "$sout" | sed 's/^/#   /'

lab_backend b2 b2 "${BACKENDS[1]}"
ms=$(lab_wait_healthy 1 5)
r=$(lab_client c probe --to "$VIP:$VPORT" --from "${CLIENTS[0]}")
check "service resumes when a backend comes back ($ms ms; $r)" grep -q "result=connected backend=b2 " <<<"$r"
lab_landed "$(lab_client c xfer --to "$VIP:$VPORT" --from "$(IFS=,; echo "${CLIENTS[*]}")" --bytes 1000000)"
check "all clients now on the one healthy backend, bytes intact ($SHA_OK/${#CLIENTS[@]})" \
	test "$SHA_OK" -eq ${#CLIENTS[@]} -a "$(printf '%s\n' "${LANDED[@]}" | sort -u)" = "${BACKENDS[1]}"

exit 0
