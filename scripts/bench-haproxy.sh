#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Live-traffic comparison: haproxy (Debian's, TCP mode, `balance source`, as
# in the deployment kha-xdp replaces) against kha-xdp (native XDP on the LB's
# veth), same lab, same client, same backends. docs/benchmarks.md.
#
#   switch ns: br0 --+-- c   client   NET.21        wrk
#                    +-- lb  LB       NET.2, VIP NET.100/32
#                    +-- b1..b3       NET.11-.13, haproxy answering HTTP
#                                     200 itself on :6443 (a fast server
#                                     in C, so the backends are not what
#                                     is measured)
#
# Two loads per LB, each for DURATION seconds with wrk:
#   keep-alive  CONNS connections, many requests each: packets per second
#               through an established flow (XDP: path 1+2 and 3)
#   close       `Connection: close`: every request is a new TCP connection
#               (XDP: the new-flow path, SNAT port claim, conntrack insert)
# and prints requests/s and latency for both LBs, and their ratio, with the
# client's TCP counters (connections, SYN retransmits), the backends'
# (accepted, SYNs refused in TIME_WAIT) and kha-xdp's vip_stats and drop
# reasons. The close load is run a third time with a wide SNAT range above
# the VIP port (--snat-ports 10240-65535, "kha-xdp-w"): docs/benchmarks.md explains
# what the default range does under this load.
#
# Everything lives in namespaces named bnhp<pid>-*, removed on exit.
# Usage: scripts/bench-haproxy.sh [DURATION_SECONDS] (default 10)
#   The machine has 2 CPUs shared by wrk, the LB and the backends: the
#   numbers compare the two LBs' cost on this box, not line rate.
#
# R[] holds space-separated fields that `set --` splits on purpose:
# shellcheck disable=SC2086
set -u
# shellcheck source=scripts/lab.sh
. "$(dirname "$0")/lab.sh"

DURATION=${1:-10}
CONNS=${BENCH_CONNS:-64}
NET=10.231.0

command -v wrk >/dev/null || { echo "bench-haproxy: wrk missing (apt-get install wrk)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "bench-haproxy: haproxy missing" >&2; exit 1; }
[ -x "$KHA" ] || { echo "bench-haproxy: $KHA not built (make)" >&2; exit 1; }

lab_init bnhp

VIP=$NET.100
# the kha-xdp-w run gets a VIP of its own: the backends still hold the
# previous run's VIP:port tuples in TIME_WAIT for 60 s, which a freshly
# attached data plane cannot know (docs/benchmarks.md)
VIP_W=$NET.101
TARGET=$VIP
VPORT=8443
BPORT=6443
LB_ADDR=$NET.2
CLIENT=$NET.21
BACKENDS=("$NET.11:$BPORT" "$NET.12:$BPORT" "$NET.13:$BPORT")

lab_switch
lab_node c "$CLIENT/24"
lab_node lb "$LB_ADDR/24" "$VIP/32" "$VIP_W/32"
for i in 1 2 3; do
	lab_node "b$i" "$NET.1$i/24"
	cat >"$LAB_DIR/b$i.cfg" <<EOF
global
	maxconn 8000
	nbthread 1
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend api
	bind $NET.1$i:$BPORT
	http-request return status 200 content-type text/plain string "b$i ok"
EOF
	lab_bg "b$i" "$LAB_DIR/b$i.log" haproxy -db -f "$LAB_DIR/b$i.cfg"
	lab_wait_listen "b$i" "$NET.1$i:$BPORT" || lab_die "backend b$i haproxy does not listen"
done
lab_lb_port lb
lab_sysctl lb net.ipv4.ip_forward=1
lab_neigh lb "${BACKENDS[@]%:*}" "$CLIENT"
# time-wait reuse on the client: the close load opens thousands of
# connections per second from one address
lab_sysctl c net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
for i in 1 2 3; do lab_sysctl "b$i" net.ipv4.tcp_tw_reuse=1; done

# run_wrk LABEL EXTRA...: one wrk run from the client; prints
# "LABEL req_per_s p50_ms p99_ms errors"
run_wrk() {
	local label=$1 out rps p50 p99 errs
	shift
	out=$(lab_exec c wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" \
		"http://$TARGET:$VPORT/" 2>&1)
	echo "$out" >"$LAB_DIR/wrk-$label.txt"
	rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
	p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
	errs=$(awk '/Socket errors:/ { e = $4 + $6 + $8 + $10 } /Non-2xx/ { e += $NF } END { print e + 0 }' <<<"$out" | tr -d ,)
	echo "$label ${rps:-0} ${p50:-?} ${p99:-?} ${errs:-0}"
}

# tcp_stat NS FIELD...: TCP counters of NS (Tcp: and TcpExt: lines of
# /proc/net/snmp and /proc/net/netstat, which are per namespace)
tcp_stat() {
	local n=$1
	shift
	lab_exec "$n" cat /proc/net/snmp /proc/net/netstat | awk -v want="$*" '
		$1 == "Tcp:" || $1 == "TcpExt:" {
			if (!(($1) in hdr)) { hdr[$1] = 1; for (i = 2; i <= NF; i++) name[$1, i] = $i; next }
			for (i = 2; i <= NF; i++) val[name[$1, i]] = $i
		}
		END { n = split(want, w, " "); for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? " " : ""), val[w[i]] + 0; print "" }'
}

# be_stat FIELD...: the same, summed over the three backends
be_stat() {
	local i f sum=() v
	for i in 1 2 3; do
		read -ra v <<<"$(tcp_stat "b$i" "$@")"
		for f in "${!v[@]}"; do sum[f]=$((${sum[f]:-0} + v[f])); done
	done
	echo "${sum[@]}"
}

declare -A R=()
# measure_load LB LOAD: one wrk run, with the client's and backends' TCP
# counters around it; the result line goes into R[LB-LOAD]
measure_load() {
	local lb=$1 load=$2 line s0 s1 b0 b1
	read -ra b0 <<<"$(be_stat PassiveOpens PAWSTimewait TCPACKSkippedTimeWait)"
	read -ra s0 <<<"$(tcp_stat c TCPSynRetrans RetransSegs ActiveOpens)"
	if [ "$load" = close ]; then
		line=$(run_wrk "$lb-$load" -H "Connection: close")
	else
		line=$(run_wrk "$lb-$load")
	fi
	read -ra s1 <<<"$(tcp_stat c TCPSynRetrans RetransSegs ActiveOpens)"
	read -ra b1 <<<"$(be_stat PassiveOpens PAWSTimewait TCPACKSkippedTimeWait)"
	R[$lb-$load]="$line $((s1[2] - s0[2])) $((s1[0] - s0[0])) $((s1[1] - s0[1]))"
	echo "# $line; client: connections $((s1[2] - s0[2])), SYN retransmits $((s1[0] - s0[0])), retransmitted segments $((s1[1] - s0[1]));" \
		"backends: accepted $((b1[0] - b0[0])), segments refused by PAWS in TIME_WAIT $((b1[1] - b0[1])), TIME_WAIT ACKs rate-limited $((b1[2] - b0[2]))"
}
measure() {
	measure_load "$1" keepalive
	measure_load "$1" close
}

# --- haproxy ----------------------------------------------------------------
cat >"$LAB_DIR/lb.cfg" <<EOF
global
	maxconn 8000
defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend vip
	bind $VIP:$VPORT
	default_backend apiservers
backend apiservers
	balance source
EOF
for b in "${BACKENDS[@]}"; do echo "	server ${b%:*} $b" >>"$LAB_DIR/lb.cfg"; done
lab_bg lb "$LAB_DIR/lb-haproxy.log" haproxy -db -f "$LAB_DIR/lb.cfg"
HAP_PID=$LAB_LAST_PID
lab_wait_listen lb "$VIP:$VPORT" || lab_die "haproxy on the LB does not listen"
echo "# haproxy $(haproxy -v | head -1 | awk '{print $3}'), TCP mode, balance source, $CONNS connections, ${DURATION}s per load"
measure haproxy
kill "$HAP_PID"
wait "$HAP_PID" 2>/dev/null

# --- kha-xdp ----------------------------------------------------------------
args=(attach eth0 --no-local --xdp-mode native --vip "$VIP:$VPORT" --pin-root "$LAB_PIN")
for b in "${BACKENDS[@]}"; do args+=(--backend "$b"); done
out=$(lab_kha lb "${args[@]}" 2>&1) || lab_die "kha-xdp attach: $out"
echo "# kha-xdp attach eth0 (native XDP), same VIP, same backends"
# xdp_report: the XDP program really carried the traffic (its counters
# moved), and why packets were dropped (bpftool's "formatted" view:
# per-CPU values by field name)
xdp_report() {
	local pk rs
	pk=$(bpftool -j map lookup pinned "$LAB_PIN/eth0/vip_stats" key 0 0 0 0 |
		python3 -c '
import json, sys
v = json.load(sys.stdin)["formatted"]["values"]
print(sum(c["value"]["packets"] for c in v), sum(c["value"]["new_flows"] for c in v))')
	echo "# $1 vip_stats: packets=${pk% *} new_flows=${pk#* }"
	rs=$(bpftool -j map lookup pinned "$LAB_PIN/eth0/reasons" key 0 0 0 0 |
		python3 -c '
import json, sys, collections
t = collections.Counter()
for c in json.load(sys.stdin)["formatted"]["values"]:
    t.update(c["value"])
print(" ".join(f"{k}={v}" for k, v in sorted(t.items()) if v) or "none")')
	echo "# $1 reasons (drops, passes, events): $rs"
}
measure kha-xdp
xdp_report kha-xdp
lab_kha lb detach eth0 --pin-root "$LAB_PIN" >/dev/null 2>&1

# The same with the widest SNAT range: a backend's ports are held until the
# flow is idle ~2 min (docs/datapath.md), so the default 22528 ports per
# backend last ~10 s of the close load from one client address. This shows
# the rate before the range runs out, and how much of the gap that is.
args[6]=$VIP_W:$VPORT
TARGET=$VIP_W
out=$(lab_kha lb "${args[@]}" --snat-ports 10240-65535 2>&1) || lab_die "kha-xdp attach: $out"
echo "# kha-xdp attach eth0 --vip $VIP_W:$VPORT --snat-ports 10240-65535 (kha-xdp-w)"
measure_load kha-xdp-w close
xdp_report kha-xdp-w
lab_kha lb detach eth0 --pin-root "$LAB_PIN" >/dev/null 2>&1

# --- table ------------------------------------------------------------------
printf '\n%-10s %-9s %10s %9s %9s %6s %8s %8s\n' load lb "req/s" "p50" "p99" errors conns "SYN-rtx"
for load in keepalive close; do
	for lb in haproxy kha-xdp kha-xdp-w; do
		[ -n "${R[$lb-$load]:-}" ] || continue
		set -- ${R[$lb-$load]}
		printf '%-10s %-9s %10s %9s %9s %6s %8s %8s\n' "$load" "$lb" "$2" "$3" "$4" "$5" "$6" "$7"
	done
done
echo
for k in kha-xdp-keepalive kha-xdp-close kha-xdp-w-close; do
	load=${k##*-}
	set -- ${R[haproxy-$load]}
	h=$2
	set -- ${R[$k]}
	awk -v l="$load" -v lb="${k%-*}" -v h="$h" -v x="$2" 'BEGIN {
		if (h > 0) printf "%-10s %s / haproxy = %.2fx requests/s\n", l, lb, x / h }'
done
