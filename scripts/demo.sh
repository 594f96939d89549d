#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: kha-xdp on the reference topology, built in network
# namespaces (nothing touches the machine's own interfaces), then torn down.
#
#   master1 192.168.129.105  kha-xdp run, holds VIP 192.168.129.253,
#                            apiserver stand-in on :6443
#   master2 192.168.129.111  apiserver stand-in on :6443
#   master3 192.168.129.112  apiserver stand-in on :6443
#   client  192.168.129.21-.40 (twenty "kubelets")
#
# The apiserver stand-in (tests/tools/backend.py) serves HTTPS /readyz with
# a self-signed certificate and a byte-transfer protocol on the same port.
# Shows: traffic through VIP:8443 and which master each client hit,
# `kha-xdp status`, `bpftool map dump pinned`, a master's apiserver killed
# and the failover, its return, and a clean stop. About ten seconds; Ctrl-C
# cleans up at any point.
set -u
. "$(dirname "$0")/lab.sh"

NET=192.168.129
VIP=$NET.253
VPORT=8443
BPORT=6443
MASTERS=(m1 m2 m3)
declare -A MADDR=([m1]=$NET.105 [m2]=$NET.111 [m3]=$NET.112)
CLIENTS=()
for i in $(seq 21 40); do CLIENTS+=("$NET.$i"); done
ALL=$(IFS=,; echo "${CLIENTS[*]}")
INTER=500 FALL=2 RISE=2 TIMEOUT=500

B='' D='' N=''
[ -t 1 ] && B=$'\033[1m' D=$'\033[2m' N=$'\033[0m'
say() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
run() {
	printf '%s$ %s%s\n' "$D" "$*" "$N"
	"$@"
}
# kha-xdp in master1's namespace, shown as the operator would type it there
m1_kha() {
	printf '%smaster1# kha-xdp %s%s\n' "$D" "$*" "$N"
	lab_kha m1 "$@"
}
name_of() { # ADDR:PORT -> master name
	local m
	for m in "${MASTERS[@]}"; do
		[ "${1%:*}" = "${MADDR[$m]}" ] && { echo "$m"; return; }
	done
	echo "?"
}

# traffic: one connection per client, 1 MB each way; a table of who went where
traffic() {
	local out l c bl n_ok=0
	out=$(lab_client client xfer --to "$VIP:$VPORT" --from "$ALL" --bytes 1000000 --timeout 5)
	declare -gA HIT=()
	printf '  %-16s %-8s %-22s %-22s %s\n' client master "backend saw peer" "bytes (1 MB each way)" ms
	while read -r l; do
		c=$(sed -n 's/^xfer from=\([0-9.]*\):.*/\1/p' <<<"$l")
		bl=$(sed -n 's/.* backend_local=\([^ ]*\) .*/\1/p' <<<"$l")
		if [ -n "$bl" ]; then
			HIT[$c]=$(name_of "$bl")
			grep -q 'up_sha=ok .*down_sha=ok' <<<"$l" && n_ok=$((n_ok + 1))
			printf '  %-16s %-8s %-22s %-22s %s\n' "$c" "${HIT[$c]}" \
				"$(sed -n 's/.* backend_peer=\([^ ]*\) .*/\1/p' <<<"$l")" \
				"$(grep -q 'up_sha=ok .*down_sha=ok' <<<"$l" && echo "sha256 ok both ways" || echo CORRUPT)" \
				"$(sed -n 's/.* ms=\([0-9]*\)/\1/p' <<<"$l")"
		else
			HIT[$c]=error
			printf '  %-16s %s\n' "$c" "$(sed 's/.* error=//' <<<"$l")"
		fi
	done <<<"$out"
	echo "  -> $n_ok/${#CLIENTS[@]} connections delivered their bytes intact;" \
		"per master: $(for m in "${MASTERS[@]}"; do printf '%s=%d ' "$m" \
			"$(printf '%s\n' "${HIT[@]}" | grep -c "^$m$")"; done)"
}

[ -x "$KHA" ] || { echo "demo: $KHA not built (run make)" >&2; exit 1; }
lab_init demo
LAB_LB=m1
LAB_CLIENT=client

say "Building the reference topology in network namespaces ($LAB_ID-*)"
lab_switch
lab_node client $(printf '%s/24 ' "${CLIENTS[@]}")
for m in "${MASTERS[@]}"; do
	lab_node "$m" "${MADDR[$m]}/24"
	lab_backend "$m" "$m" "${MADDR[$m]}:$BPORT"
	echo "  $m  ${MADDR[$m]}  apiserver stand-in on :$BPORT (HTTPS /readyz, self-signed)"
done
echo "  client  $NET.21-.40 (20 addresses on one interface)"
# master1 holds the VIP. Its bridge port gets an XDP_PASS program: a veth
# delivers XDP_TX frames only when its peer runs XDP too.
ip -n "$(lab_ns m1)" addr add "$VIP/32" dev eth0
lab_lb_port m1
lab_sysctl m1 net.ipv4.ip_forward=1
lab_neigh m1 "${MADDR[m2]}" "${MADDR[m3]}" "${CLIENTS[@]}"
echo "  VIP $VIP on master1's eth0; XDP will run there in native mode"

CONF=$LAB_DIR/kha-xdp.conf
cat >"$CONF" <<EOF
interface eth0
xdp_mode native
pin_root $LAB_PIN
control_socket $LAB_CTL
local_address ${MADDR[m1]}
local_clients no

vip $VIP:$VPORT {
	check https
	check_path /readyz
	inter $INTER
	fall $FALL
	rise $RISE
	timeout $TIMEOUT
	backend ${MADDR[m1]}:$BPORT
	backend ${MADDR[m2]}:$BPORT
	backend ${MADDR[m3]}:$BPORT
}
EOF
say "Config (docs/config.md; the reference file is docs/kha-xdp.conf.example)"
sed 's/^/  /' "$CONF"
run "$KHA" check -c "$CONF"

say "Starting kha-xdp run on master1"
echo "  $ $KHA run -c $CONF   (in master1's namespace)"
lab_daemon "$CONF" || { echo "demo: kha-xdp run did not start" >&2; exit 1; }
lab_wait_healthy 3 10 >/dev/null
sed 's/^/  daemon: /' "$LAB_DIR/daemon.log" | head -12
ip -n "$(lab_ns m1)" -d link show eth0 | grep -o 'prog/xdp id [0-9]*' | sed 's/^/  eth0: /'

say "20 clients connect to VIP:8443 (balance source: one client, one master)"
echo "  master1 holds the VIP and is a backend too: its connections are DNAT only"
echo "  (it sees the client's address; tc egress restores VIP:8443 on the replies);"
echo "  master2 and master3 are reached by full NAT (they see VIP:port-from-range)."
traffic
declare -A BEFORE=()
for c in "${CLIENTS[@]}"; do BEFORE[$c]=${HIT[$c]}; done

say "kha-xdp status"
m1_kha status -c "$CONF"

say "The pinned maps, as bpftool shows them (BTF: named fields)"
run bpftool map dump pinned "$LAB_PIN/eth0/backends" | grep -B1 -A12 '"addr"' | head -40
run bpftool map dump pinned "$LAB_PIN/eth0/vip_stats" | head -24
echo "  (addresses and ports are stored in network byte order; decoded:)"
"$LAB_PY" "$LAB_TOOLS/khamaps.py" "$LAB_PIN/eth0" | sed 's/^/  /'
echo "  every pin: $(ls "$LAB_PIN/eth0" | tr '\n' ' ')"

say "Killing master2's apiserver (SIGKILL)"
lab_kill_backend m2
vc=
for c in "${CLIENTS[@]}"; do [ "${BEFORE[$c]}" = m2 ] && { vc=$c; break; }; done
if [ -n "$vc" ]; then
	ms=$(lab_wait_backend "$vc" '!m2' 10)
	echo "  client $vc (was on master2) is served by another master after $ms ms" \
		"(fall $FALL x inter $INTER ms)"
fi
grep -E "${MADDR[m2]//./\\.}" "$LAB_DIR/daemon.log" | tail -3 | sed 's/^/  daemon: /'
traffic
moved=0 stayed=0
for c in "${CLIENTS[@]}"; do
	if [ "${BEFORE[$c]}" = m2 ]; then
		[ "${HIT[$c]}" != m2 ] && [ "${HIT[$c]}" != error ] && moved=$((moved + 1))
	elif [ "${HIT[$c]}" = "${BEFORE[$c]}" ]; then
		stayed=$((stayed + 1))
	fi
done
echo "  -> master2's clients moved: $moved; every other client stayed where it was: $stayed"
m1_kha status -c "$CONF"

say "Bringing master2's apiserver back"
lab_backend m2 m2 "${MADDR[m2]}:$BPORT"
if [ -n "$vc" ]; then
	ms=$(lab_wait_backend "$vc" m2 10)
	echo "  client $vc is back on master2 after $ms ms (rise $RISE x inter $INTER ms)"
fi
traffic

say "Stopping kha-xdp (SIGTERM): it removes its program and pins"
lab_kill TERM "$LAB_DAEMON_PID"
echo "  daemon exit status: $?"
echo "  XDP on master1's eth0: $(ip -n "$(lab_ns m1)" -d link show eth0 | grep -o 'prog/xdp id [0-9]*' || echo none)"
echo "  pins under $LAB_PIN: $(find "$LAB_PIN" -mindepth 1 2>/dev/null | wc -l)"

say "Done: removing the namespaces ($LAB_ID-*) and the lab files"
lab_cleanup
