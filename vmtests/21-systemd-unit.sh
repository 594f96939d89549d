#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The systemd side of `kha-xdp run` (issue 3, "For the operator"), without a
# systemd PID 1 (this machine has none):
#   - `make install DESTDIR=...` installs the binary, the unit, the docs and
#     the example config, and `systemd-analyze verify` accepts the unit;
#   - the unit's capability set is enough to attach (XDP, tc, cgroup), and
#     none of it is superfluous for the XDP load (CAP_PERFMON is checked);
#   - sd_notify by hand: READY=1 once the data plane is pinned, RELOADING=1
#     then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, to a path socket and to
#     an abstract '@' socket, as Type=notify needs;
#   - exit modes: SIGUSR2 (and --on-exit keep) leave the data plane and the
#     VIP for the next daemon, SIGTERM outside systemd removes everything.
set -u
TAG=ld$$
NS=$TAG-sd
PIN=/sys/fs/bpf/ld-sd-$$
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KHA=$ROOT/build/kha-xdp
TMP=$(mktemp -d /tmp/ld-sd.XXXXXX)
fails=0
pids=()

ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fails=$((fails + 1)); }
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	nsenter --net="/run/netns/$NS" -- "$KHA" detach eth0 --pin-root "$PIN" >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
N() { nsenter --net="/run/netns/$NS" -- "$@"; }
prog_id() { N ip -d link show "$1" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -1; }

[ -x "$KHA" ] || { echo "not ok - $KHA not built"; exit 1; }

# --- make install + systemd-analyze verify ------------------------------
DEST=$TMP/dest
out=$(make -s -C "$ROOT" install DESTDIR="$DEST" 2>&1)
rc=$?
[ $rc -eq 0 ] || echo "$out" | tail -5 | sed 's/^/#   /'
check "make install DESTDIR=... exits 0" test $rc -eq 0
UNIT=$DEST/etc/systemd/system/kha-xdp.service
check "installed: binary, unit, example config, operations doc" \
	test -x "$DEST/usr/local/sbin/kha-xdp" -a -f "$UNIT" \
	-a -f "$DEST/etc/kha-xdp/kha-xdp.conf" \
	-a -f "$DEST/usr/local/share/doc/kha-xdp/operations.md"
out=$("$DEST/usr/local/sbin/kha-xdp" check -c "$DEST/etc/kha-xdp/kha-xdp.conf" 2>&1)
check "the installed example config passes kha-xdp check ($out)" test $? -eq 0

if command -v systemd-analyze >/dev/null; then
	# verify wants the unit's executables on this root: point them into DEST
	mkdir -p "$TMP/verify"
	sed "s|/usr/local|$DEST/usr/local|g; s|/etc/kha-xdp|$DEST/etc/kha-xdp|g" \
		"$UNIT" >"$TMP/verify/kha-xdp.service"
	out=$(systemd-analyze verify "$TMP/verify/kha-xdp.service" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/#   /'
	check "systemd-analyze verify accepts the installed unit (no complaint)" \
		test $rc -eq 0 -a -z "$out"
else
	nok "systemd-analyze is not installed"
fi
prop() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
check "Type=notify, Restart=on-failure, ExecReload sends SIGHUP to \$MAINPID" \
	test "$(prop Type)" = notify -a "$(prop Restart)" = on-failure \
	-a "$(prop ExecReload)" = '/bin/kill -HUP $MAINPID'
CAPS=$(prop CapabilityBoundingSet)
check "capabilities: exactly CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_NET_RAW ($CAPS)" \
	test "$(echo $CAPS | tr ' ' '\n' | sort | tr '\n' ' ')" = "CAP_BPF CAP_NET_ADMIN CAP_NET_RAW CAP_PERFMON "
check "filesystem protections: ProtectSystem=strict, pins, socket and per-interface IPv4 knobs writable, NoNewPrivileges" \
	test "$(prop ProtectSystem)" = strict -a "$(prop ReadWritePaths)" = "/sys/fs/bpf /proc/sys/net/ipv4/conf" \
	-a "$(prop RuntimeDirectory)" = kha-xdp -a "$(prop NoNewPrivileges)" = yes \
	-a "$(prop ProtectHome)" = yes -a "$(prop PrivateTmp)" = yes

# --- the capability set is enough, and CAP_PERFMON is needed -------------
ip netns add "$NS" || { echo "not ok - cannot create $NS"; exit 1; }
N ip link set lo up
N ip link add eth0 type veth peer name peer0
N ip link set eth0 up
N ip link set peer0 up
N ip addr add 10.96.0.1/24 dev eth0
bset=-all
for c in $CAPS; do bset="$bset,+$(echo "${c#CAP_}" | tr A-Z a-z)"; done
out=$(N setpriv --bounding-set="$bset" --inh-caps=-all "$KHA" attach eth0 \
	--vip 10.96.0.100:8443 --backend 10.96.0.1:6443 --backend 10.96.0.2:6443 \
	--pin-root "$PIN" 2>&1)
rc=$?
echo "$out" | sed 's/^/#   /'
check "with only the unit's capabilities: attach (XDP + tc + cgroup) works" \
	test $rc -eq 0 -a -n "$(prog_id eth0)" -a -e "$PIN/eth0/link_connect4"
N setpriv --bounding-set="$bset" --inh-caps=-all "$KHA" detach eth0 --pin-root "$PIN" >/dev/null 2>&1
check "with only the unit's capabilities: detach removes everything" \
	test -z "$(prog_id eth0)" -a ! -e "$PIN"
out=$(N setpriv --bounding-set="${bset/,+perfmon/}" --inh-caps=-all "$KHA" attach eth0 \
	--no-local --vip 10.96.0.100:8443 --backend 10.96.0.2:6443 --pin-root "$PIN" 2>&1)
rc=$?
echo "#   without CAP_PERFMON: $out"
check "without CAP_PERFMON the XDP program does not load (so it is needed)" \
	test $rc -ne 0 -a -z "$(prog_id eth0)"

# --- sd_notify, path and abstract sockets --------------------------------
cat >"$TMP/notify.py" <<'EOF'
import socket, sys, time
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
t0 = time.monotonic()
with open(sys.argv[2], "w", buffering=1) as f:
    f.write("0 LISTENING\n")
    while True:
        m = s.recv(4096).decode()
        f.write("%d %s\n" % ((time.monotonic() - t0) * 1000, m.replace("\n", "|")))
EOF
cat >"$TMP/kha.conf" <<EOF
interface eth0
pin_root $PIN
control_socket $TMP/ctl.sock
local_clients no
vip 10.96.0.100:8443 {
	check none
	backend 10.96.0.2:6443
}
EOF
wait_for() { # wait_for FILE PATTERN [tenths]
	local i
	for ((i = 0; i < ${3:-50}; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
for kind in path abstract; do
	if [ $kind = path ]; then sock=$TMP/notify.sock; else sock=@ld-notify-$$; fi
	log=$TMP/notify-$kind.log
	# abstract sockets belong to a network namespace: listen in the daemon's
	nsenter --net="/run/netns/$NS" -- python3 "$TMP/notify.py" "$sock" "$log" &
	pids+=($!)
	# bound before the daemon starts (a fixed sleep lost READY=1 on a
	# loaded machine)
	wait_for "$log" LISTENING 100
	NOTIFY_SOCKET=$sock INVOCATION_ID=ld-test nsenter --net="/run/netns/$NS" -- "$KHA" run -c "$TMP/kha.conf" --on-exit stop \
		>"$TMP/daemon-$kind.log" 2>&1 &
	dpid=$!
	pids+=($dpid)
	wait_for "$log" READY=1 150
	check "$kind socket: READY=1 sent, after the link was pinned" \
		eval 'grep -q READY=1 "$log" && test -e "$PIN/eth0/link_xdp"'
	kill -HUP $dpid
	wait_for "$log" "RELOADING=1"
	for ((i = 0; i < 150; i++)); do
		[ "$(grep -c READY=1 "$log")" -ge 2 ] && break
		sleep 0.1
	done
	check "$kind socket: SIGHUP sends RELOADING=1 then READY=1" \
		eval '[ "$(grep -o "RELOADING=1\|READY=1" "$log" | tr "\n" " ")" = "READY=1 RELOADING=1 READY=1 " ]'
	kill -TERM $dpid
	wait $dpid
	rc=$?
	check "$kind socket: SIGTERM sends STOPPING=1, exit 0 ($rc)" \
		eval 'wait_for "$log" STOPPING=1 5 && [ $rc -eq 0 ]'
	check "$kind socket: SIGTERM (not a systemd restart) removed program and pins" \
		test -z "$(prog_id eth0)" -a ! -e "$PIN"
done
sed 's/^/#   notify: /' "$TMP/notify-path.log"

# --- VRRP needs CAP_NET_RAW: with the unit's set it works, without it the
# daemon refuses to start and leaves nothing behind -----------------------
sed 's/^}$/}\nvrrp {\n\tversion 3\n\tvirtual_router_id 77\n\tpriority 120\n\tadvert_int 0.1\n}/' \
	"$TMP/kha.conf" >"$TMP/vrrp.conf"
nsenter --net="/run/netns/$NS" -- setpriv --bounding-set="$bset" --inh-caps=-all \
	"$KHA" run -c "$TMP/vrrp.conf" --on-exit stop >"$TMP/daemon-vrrp.log" 2>&1 &
dpid=$!
pids+=($dpid)
for ((i = 0; i < 50; i++)); do
	N ip addr show eth0 | grep -q "10.96.0.100/32" && break
	sleep 0.1
done
st=$(N "$KHA" status -c "$TMP/vrrp.conf" 2>&1 | grep '^vrrp:')
echo "#   $st"
check "with the unit's capabilities, VRRP runs: alone on the segment it becomes MASTER and holds the VIP" \
	eval 'grep -q MASTER <<<"$st" && N ip addr show eth0 | grep -q "10.96.0.100/32"'
kill -TERM $dpid
wait $dpid
rc=$?
check "SIGTERM as VRRP master: exit 0, VIP removed, nothing pinned" \
	eval '[ $rc -eq 0 ] && ! N ip addr show eth0 | grep -q "10.96.0.100/32" && [ ! -e "$PIN" ]'
nsenter --net="/run/netns/$NS" -- setpriv --bounding-set="${bset/,+net_raw/}" --inh-caps=-all \
	"$KHA" run -c "$TMP/vrrp.conf" --on-exit stop >"$TMP/daemon-noraw.log" 2>&1
rc=$?
grep -E 'error' "$TMP/daemon-noraw.log" | sed 's/^/#   /'
check "without CAP_NET_RAW the daemon with VRRP fails to start (exit $rc), says why, leaves no pin" \
	eval '[ $rc -ne 0 ] && grep -q "VRRP socket: Operation not permitted" "$TMP/daemon-noraw.log" && [ ! -e "$PIN" ] && [ -z "$(prog_id eth0)" ]'

# --- keep: the data plane and the VIP stay for the next daemon -----------
# (nsenter execs the daemon: $! is the daemon's pid, not a subshell's)
nsenter --net="/run/netns/$NS" -- "$KHA" run -c "$TMP/kha.conf" >"$TMP/daemon-keep.log" 2>&1 &
dpid=$!
pids+=($dpid)
for ((i = 0; i < 50; i++)); do [ -S "$TMP/ctl.sock" ] && break; sleep 0.1; done
id1=$(prog_id eth0)
kill -USR2 $dpid
wait $dpid
rc=$?
sed 's/^/#   daemon: /' "$TMP/daemon-keep.log" | tail -3
check "SIGUSR2: exit 0, XDP program, pins and VIP address left in place" \
	eval '[ $rc -eq 0 ] && [ -n "$id1" ] && [ "$(prog_id eth0)" = "$id1" ] &&
	      [ -e "$PIN/eth0/link_xdp" ] && N ip addr show eth0 | grep -q "10.96.0.100/32"'
nsenter --net="/run/netns/$NS" -- "$KHA" run -c "$TMP/kha.conf" --on-exit stop >"$TMP/daemon-adopt.log" 2>&1 &
dpid=$!
pids+=($dpid)
for ((i = 0; i < 50; i++)); do [ -S "$TMP/ctl.sock" ] && break; sleep 0.1; done
check "the next daemon adopts the same program (id $id1)" \
	eval 'grep -q "adopted" "$TMP/daemon-adopt.log" && [ "$(prog_id eth0)" = "$id1" ]'
out=$(N timeout 10 "$KHA" run -c "$TMP/kha.conf" --ctl-socket "$TMP/ctl2.sock" 2>&1)
rc=$?
echo "#   second daemon: rc=$rc: $out"
check "a second daemon for the same interface refuses to start, says why, changes nothing" \
	eval '[ $rc -eq 1 ] && grep -q "another kha-xdp daemon already runs for eth0" <<<"$out" &&
	      [ "$(prog_id eth0)" = "$id1" ] && kill -0 $dpid'
out=$(N "$KHA" detach eth0 --pin-root "$PIN" 2>&1)
rc=$?
echo "#   detach under the daemon: rc=$rc: $out"
check "detach under a running daemon is refused (one line), the program stays" \
	eval '[ $rc -eq 1 ] && [ "$(grep -c . <<<"$out")" -eq 1 ] && [ "$(prog_id eth0)" = "$id1" ]'
kill -TERM $dpid
wait $dpid
check "then --on-exit stop removes program, pins and the VIP it inherited" \
	eval '[ -z "$(prog_id eth0)" ] && [ ! -e "$PIN" ] && ! N ip addr show eth0 | grep -q "10.96.0.100/32"'
check "and its control socket" test ! -e "$TMP/ctl.sock"

[ $fails -eq 0 ]
