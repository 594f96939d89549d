#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Closing flows free their SNAT port (docs/datapath.md "Closing"): the
# `Connection: close` load of docs/benchmarks.md, in the lab.
#   - 1000 sequential short connections from ONE client address (so one
#     backend) through an 800-port SNAT range, the client closing first,
#     all succeed, none waits for a SYN retransmit, drop_snat_exhausted
#     stays 0 and ports were reused (snat_reclaimed > 0). Before: a port
#     was held ~120 s after its flow ended, the range ran out after ~800.
#     The pace (45/s) keeps the ports held by the ~2-3 s close hold at
#     ~1/5 of the range, where 8 claim attempts essentially never all fail.
#   - 100 connections from one client address AND port (tcp_tw_reuse, as
#     wrk did): each SYN on the closed flow is a new flow, so the backend
#     comes from another VIP:port every time, never from the 4-tuple it
#     just closed.
#
#   switch ns: br0 --+-- c   client  10.213.12.21
#                    +-- lb  LB      10.213.12.2, VIP 10.213.12.100/32, XDP
#                    +-- b1..b3      10.213.12.11-.13, backend.py on :6443
set -u
. "$(dirname "$0")/../scripts/lab.sh"
lab_init tc2sc

NET=10.213.12
MAPS="$LAB_PY $LAB_TOOLS/khamaps.py"
SNAT_LO=20000
SNAT_HI=20799

[ -x "$KHA" ] || lab_die "$KHA not built"

lab_topo $NET 1
C=${CLIENTS[0]}

lab_attach_lb --snat-ports "$SNAT_LO-$SNAT_HI"
ok "kha-xdp attach eth0 --snat-ports $SNAT_LO-$SNAT_HI"

# N short connections: connect, "KHA ECHO", one line echoed, then the
# client's FIN, the backend's, close (the client closes first). --rate paces them; --sport binds one source port
# for all (SO_REUSEADDR; the client namespace reuses its TIME_WAIT). Prints
# one summary line: ok, slow (a connection that took >= 0.9 s waited for a
# SYN retransmit), distinct VIP ports the backends saw, how many times a
# connection came from the previous one's VIP port, backends.
SHORT='
import socket, sys, time
vip, vport, src, n, rate, sport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
def line(s):
    b = b""
    while not b.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            raise ConnectionError("EOF")
        b += c
    return b.decode()
ok = slow = same = 0
prev = None
ports, backends, errs = set(), set(), {}
t0 = time.monotonic()
for i in range(n):
    if rate:
        d = t0 + i / rate - time.monotonic()
        if d > 0:
            time.sleep(d)
    t = time.monotonic()
    s = socket.socket()
    try:
        s.settimeout(5)
        if sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, sport))
        s.connect((vip, vport))
        s.sendall(b"KHA ECHO\n")
        f = line(s).split()
        msg = b"short %d\n" % i
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            c = s.recv(len(msg) - len(got))
            if not c:
                raise ConnectionError("EOF")
            got += c
        if got != msg:
            raise ValueError("corrupt echo")
        s.shutdown(socket.SHUT_WR)  # the client FIN first, then the backend FIN
        while s.recv(64):
            pass
        backends.add(f[1])
        ports.add(f[5])
        same += f[5] == prev
        prev = f[5]
        ok += 1
        if time.monotonic() - t >= 0.9:
            slow += 1
    except (OSError, ValueError, IndexError) as e:
        k = "%s%s" % (type(e).__name__, getattr(e, "errno", "") or "")
        errs[k] = errs.get(k, 0) + 1
    finally:
        s.close()
print("short n=%d ok=%d slow=%d peers=%d same=%d backends=%s errors=%s seconds=%.1f" %
      (n, ok, slow, len(ports), same, ",".join(sorted(backends)) or "-",
       ",".join("%s:%d" % kv for kv in errs.items()) or "-", time.monotonic() - t0))
'
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# --- 1000 sequential short connections, 800 ports ------------------------
ex0=$(lab_reason drop_snat_exhausted)
l=$(lab_exec c "$LAB_PY" -c "$SHORT" "$VIP" "$VPORT" "$C" 1000 45 0)
lab_log "$l"
ex1=$(lab_reason drop_snat_exhausted)
rec=$(lab_reason snat_reclaimed)
check "1000 short connections through $((SNAT_HI - SNAT_LO + 1)) SNAT ports all succeed ($(field ok "$l")/1000)" \
	test "$(field ok "$l")" = 1000
check "none waited for a SYN retransmit (slow=$(field slow "$l"))" test "$(field slow "$l")" = 0
check "drop_snat_exhausted stays 0 ($ex0 -> $ex1)" test "$ex1" = 0
check "closed flows' ports went to new flows (snat_reclaimed=$rec > 0, backends=$(field backends "$l"))" \
	test "$rec" -gt 0 -a "$(field backends "$l")" != -

# --- one client port, reused ---------------------------------------------
# connect() may reuse the client's own TIME_WAIT at once (delay 1 ms)
lab_sysctl c net.ipv4.tcp_tw_reuse=1 net.ipv4.tcp_tw_reuse_delay=1 ||
	lab_die "cannot enable tcp_tw_reuse in the client namespace"
l=$(lab_exec c "$LAB_PY" -c "$SHORT" "$VIP" "$VPORT" "$C" 100 0 41234)
lab_log "$l"
check "100 connections from $C:41234 all succeed ($(field ok "$l")/100, slow=$(field slow "$l"))" \
	test "$(field ok "$l")" = 100 -a "$(field slow "$l")" = 0
# (a port may come back two connections later: the claim's first candidate
# is a hash of the client address and port; its last user closed first, so
# the backend keeps no TIME_WAIT for it)
check "each reuse of $C:41234 reached the backend from another VIP port than the last ($(field same "$l") repeats, $(field peers "$l") ports)" \
	test "$(field same "$l")" = 0 -a "$(field peers "$l")" -gt 1
ex2=$(lab_reason drop_snat_exhausted)
check "drop_snat_exhausted still 0 ($ex2)" test "$ex2" = 0

$MAPS "$LAB_PIN/eth0" | sed 's/^/#   /'

out=$(lab_kha lb detach eth0 --pin-root "$LAB_PIN" 2>&1)
check "kha-xdp detach eth0 exits 0 ($out)" test $? -eq 0
exit $((LAB_FAILS > 0))
