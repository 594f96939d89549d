#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The CLI's errors (issue 2, "The loader"): every failure is one line on
# stderr naming the thing and the cause, with a non-zero exit, and touches
# nothing it does not own:
#   - attach to a missing interface;
#   - attach over an XDP program someone else attached (ip link ... xdp
#     obj): refused, their program stays, nothing pinned;
#   - attach twice: "already attached by kha-xdp, detach first", the first
#     attachment keeps working;
#   - no BPF permission (an unprivileged user);
#   - bad addresses, ports, ranges, modes;
#   - detach of an interface kha-xdp is not on, with a foreign program:
#     refused, their program stays;
#   - check -c: a broken file gives `file:line: message`, a good one exits
#     0, neither creates anything;
#   - status/backend with no daemon and nothing pinned.
# Everything happens in a namespace of this test, on a veth of its own.
set -u
TAG=ld$$
NS=$TAG-cli
PIN=/sys/fs/bpf/ld-cli-$$
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KHA=$ROOT/build/kha-xdp
TMP=$(mktemp -d /tmp/ld-cli.XXXXXX)
fails=0

ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fails=$((fails + 1)); }
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}
cleanup() {
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

[ -x "$KHA" ] || { echo "not ok - $KHA not built"; exit 1; }
N() { nsenter --net="/run/netns/$NS" -- "$@"; }
# kha CMD...: runs kha-xdp in the namespace; sets OUT (stdout+stderr), RC
kha() {
	OUT=$(N "$KHA" "$@" 2>&1)
	RC=$?
	echo "#   kha-xdp $*: rc=$RC: $(echo "$OUT" | head -3 | tr '\n' '|')"
}
one_line() { [ "$(printf '%s\n' "$OUT" | grep -c .)" -eq 1 ]; }
failed_one_line() { [ "$RC" -ne 0 ] && one_line; }
says() { grep -qi -- "$1" <<<"$OUT"; }
prog_id() { N ip -d link show "$1" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -1; }

ip netns add "$NS" || { echo "not ok - cannot create namespace $NS"; exit 1; }
N ip link set lo up
N ip link add cli0 type veth peer name cli1
N ip link add cli2 type veth peer name cli3
for d in cli0 cli1 cli2 cli3; do N ip link set "$d" up; done
N ip addr add 10.97.0.1/24 dev cli0

# a foreign XDP program: XDP_PASS, loaded by iproute2 (not by us)
cat >"$TMP/pass.c" <<'EOF'
#include <linux/bpf.h>
__attribute__((section("xdp"), used)) int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
char _license[] __attribute__((section("license"), used)) = "GPL";
EOF
clang -O2 -target bpf -I/usr/include/$(gcc -print-multiarch) -c "$TMP/pass.c" -o "$TMP/pass.o" ||
	{ echo "not ok - cannot build the foreign XDP program"; exit 1; }

VB=(--vip 10.97.0.100:8443 --backend 10.97.0.11:6443 --no-local --pin-root "$PIN")

# --- no such interface ------------------------------------------------
kha attach nosuch0 "${VB[@]}"
check "attach nosuch0: one line, non-zero, names the interface and the cause" \
	eval 'failed_one_line && says "nosuch0" && says "no such interface"'
check "attach nosuch0: nothing pinned" test ! -e "$PIN"

# --- a program someone else attached ------------------------------------
N ip link set dev cli2 xdpgeneric obj "$TMP/pass.o" sec xdp ||
	nok "iproute2 could not attach the foreign program"
foreign=$(prog_id cli2)
kha attach cli2 "${VB[@]}"
check "attach over a foreign XDP program: one line, non-zero, says someone else has it" \
	eval 'failed_one_line && says "already attached by someone else" && says "cli2"'
check "the foreign program is still attached, unchanged (id $foreign)" \
	test -n "$foreign" -a "$(prog_id cli2)" = "$foreign"
check "nothing pinned for cli2" test ! -e "$PIN/cli2"
kha detach cli2 --pin-root "$PIN"
check "detach cli2 (not ours): one line, non-zero" \
	eval 'failed_one_line && says "not attached"'
check "detach cli2 left the foreign program alone" \
	test "$(prog_id cli2)" = "$foreign"

# --- attach twice --------------------------------------------------------
kha attach cli0 "${VB[@]}"
check "attach cli0 works" test "$RC" -eq 0
ours=$(prog_id cli0)
kha attach cli0 "${VB[@]}"
check "attach cli0 again: one line, non-zero, 'already attached by kha-xdp, detach first'" \
	eval 'failed_one_line && says "already attached by kha-xdp" && says "detach first"'
check "the first attachment is untouched (id $ours)" \
	test -n "$ours" -a "$(prog_id cli0)" = "$ours" -a -e "$PIN/cli0/link_xdp"
check "and its table is still published" \
	eval 'N "$KHA" status cli0 --pin-root "$PIN" --ctl-socket "$TMP/none.sock" | grep -q "1 of 1 backends in the table"'

# --- no permission -------------------------------------------------------
if command -v setpriv >/dev/null; then
	OUT=$(N setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$KHA" attach cli1 "${VB[@]}" 2>&1)
	RC=$?
	echo "#   unprivileged attach: rc=$RC: $OUT"
	check "attach without privileges: one line, non-zero, says permission" \
		eval 'failed_one_line && says "not permitted\|permission denied"'
	check "an unprivileged attach attached nothing to cli1" test -z "$(prog_id cli1)"
	# root, but without a single capability (a container without CAP_BPF)
	OUT=$(N setpriv --bounding-set=-all --inh-caps=-all \
		"$KHA" attach cli1 "${VB[@]}" 2>&1)
	RC=$?
	echo "#   root without capabilities: rc=$RC: $OUT"
	check "attach as root without capabilities: one line, non-zero, 'Operation not permitted'" \
		eval 'failed_one_line && says "loading the XDP program: Operation not permitted"'
	check "and it left no pin behind" test ! -e "$PIN/cli1"
else
	nok "setpriv missing: cannot test the permission error"
fi

# --- bad arguments ------------------------------------------------------
kha attach cli1 --vip 10.97.0.300:8443 --backend 10.97.0.11:6443 --pin-root "$PIN"
check "bad VIP address: one line, names it" eval 'failed_one_line && says "10.97.0.300:8443"'
kha attach cli1 --vip 10.97.0.100:8443 --backend 10.97.0.11 --pin-root "$PIN"
check "backend without port: one line, names it" eval 'failed_one_line && says "10.97.0.11"'
kha attach cli1 --vip 10.97.0.100:70000 --backend 10.97.0.11:6443 --pin-root "$PIN"
check "port out of range: one line" eval 'failed_one_line && says "70000"'
kha attach cli1 "${VB[@]}" --snat-ports 5000-4000
check "inverted SNAT range: one line" eval 'failed_one_line && says "snat-ports"'
kha attach cli1 "${VB[@]}" --xdp-mode turbo
check "unknown XDP mode: one line" eval 'failed_one_line && says "xdp-mode"'
kha attach cli1 "${VB[@]}" --ring-size 65536
check "ring size not prime: one line" eval 'failed_one_line && says "ring-size"'
kha attach cli1 --vip 10.97.0.100:8443 --pin-root "$PIN"
check "VIP without backend: one line" eval 'failed_one_line && says "no --backend"'
check "none of the failed attaches attached anything to cli1" test -z "$(prog_id cli1)"
kha frobnicate
check "unknown command: non-zero" test "$RC" -ne 0

# --- check ----------------------------------------------------------------
cat >"$TMP/bad.conf" <<EOF
interface cli0
pin_root $PIN-check
vip 10.97.0.100:8443 {
	backend 10.97.0.11:6443
	backend 10.97.0.12:99999
}
EOF
kha check -c "$TMP/bad.conf"
check "check of a broken file: 'file:line: message', exit 1" \
	eval '[ "$RC" -eq 1 ] && one_line && says "^$TMP/bad.conf:5: "'
sed -i 's/99999/6443/' "$TMP/bad.conf"
kha check -c "$TMP/bad.conf"
check "check of a good file: exit 0" test "$RC" -eq 0
check "check touched nothing (no pins)" test ! -e "$PIN-check"
kha check -c "$TMP/missing.conf"
check "check of a missing file: one line naming it, non-zero" \
	eval 'failed_one_line && says "missing.conf"'

# --- status / backend with nothing to talk to ---------------------------
kha status cli1 --pin-root "$PIN" --ctl-socket "$TMP/none.sock"
check "status of an interface kha-xdp is not on: one line, non-zero" \
	eval 'failed_one_line && says "not attached"'
kha backend drain 10.97.0.11:6443 --ctl-socket "$TMP/none.sock"
check "backend drain without a daemon: one line, non-zero" \
	eval 'failed_one_line && says "no kha-xdp daemon"'

# --- detach ours, leave theirs -------------------------------------------
kha detach cli0 --pin-root "$PIN"
check "detach cli0: exit 0" test "$RC" -eq 0
check "cli0 has no XDP program left" test -z "$(prog_id cli0)"
check "no pin left under $PIN" test ! -e "$PIN"
check "the foreign program on cli2 is still there" test "$(prog_id cli2)" = "$foreign"
kha detach cli0 --pin-root "$PIN"
check "detach twice: one line, non-zero, not attached" \
	eval 'failed_one_line && says "not attached"'

[ $fails -eq 0 ]
