#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: the data-plane benchmark (tests/bench.c, docs/benchmarks.md).
#
# build/tests/bench moves itself into a private network namespace
# (unshare), so its veth pair, addresses and routes exist only inside it and
# vanish when it exits. It is pinned to one CPU so every test run stays on
# one core and the numbers of a run compare like with like.
#
# Usage: scripts/bench.sh [bench options: -n repeats -r rounds -c chunk -b batch]
#   BENCH_CPU=N       CPU to run on (default: the last one)
#   BENCH_PROFILE=1   then profile each path on its own with perf (cpu-clock,
#                     call graphs), keep only the samples taken inside the
#                     BPF test run, and print where the time goes
#   BENCH_PROFILE=lines  then the same for xdp_lb's own samples, by source
#                     line (tests/tools/jit_lines, scripts/profile-lines.py)
#   BENCH_PROFILE_PATHS="newflow ..."  profile only these (-o names)
#   BENCH_HAPROXY=1   then run scripts/bench-haproxy.sh (live TCP traffic)
set -eu
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "bench: needs root (BPF test runs, netns)" >&2; exit 1; }
[ -x build/tests/bench ] || { echo "bench: build/tests/bench missing: run make" >&2; exit 1; }

cpu=${BENCH_CPU:-$(($(nproc) - 1))}
rc=0
taskset -c "$cpu" build/tests/bench "$@" || rc=$?

# profile_path PATH: perf over `bench -o PATH`, samples inside the test run
profile_path() {
	local path=$1 data=$tmp/$1.data ns
	ns=$(perf record -q -g -o "$data" -- taskset -c "$cpu" build/tests/bench \
		-o "$path" -n 2000000 -r 1 2>&1 | sed -n 's/.*: \([0-9.]*\) ns\/packet.*/\1/p' |
		awk '{ s += $1 } END { if (NR) print s }')
	# newflow also times its own wrapper+floor, as many repeats: the
	# samples cover both, so the shares are of the sum (the program's
	# row is then still its ns per new flow)
	[ -n "$ns" ] || { echo "bench: profiling $path failed" >&2; return 1; }
	perf script -i "$data" -F comm,ip,sym 2>/dev/null |
		python3 -c '
import sys, re, collections
path, ns = sys.argv[1], float(sys.argv[2])
groups = [
    ("xdp_lb program (parse, csum, inlined array/per-CPU lookups)", r"bpf_prog_\w+_xdp_lb$"),
    ("bench wrapper (template copy, tail call)", r"bpf_prog_\w+_xdp_bench_wrap$"),
    ("floor / peer programs", r"bpf_prog_\w+_(xdp_floor|xdp_peer|xdp_pass_floor)$"),
    ("FIB + neighbour lookup", r"fib|^ip_mtu|neigh|l3mdev"),
    ("hash map update/delete (the bench LRU/hash insert probes)", r"lru|htab_map_update|alloc_htab_elem|pcpu_freelist|htab_lru|free_htab|check_and_free"),
    ("hash map lookup (vips on a cache miss)", r"htab|lookup_nulls|memcmp|jhash"),
    ("random numbers", r"rnd|prandom|random|chacha"),
    ("test-run loop, XDP_TX/redirect, veth xmit, peer NAPI, page pool", r"xdp|veth|page_pool|^bq_|napi|net_rx_action|softirq|_raw_spin|spin_unlock|spin_lock|dev_get_by_index|__rcu_read"),
    ("kernel stack (XDP_PASS)", r"skb|netif|^ip_|^tcp_|^inet|kmem_cache|kfree|__alloc|eth_type|^__build|^nf_|^raw_|^sock|^dst_|^udp"),
]
total = 0
syms, grp = collections.Counter(), collections.Counter()
block = []
def flush(b):
    global total
    if not b or b[0] != "bench":
        return
    frames = b[1:]
    # inside a test run: a test-run frame, or JIT code (whose frames the
    # unwinder sometimes cannot get past); the verifier is not counted
    if not any("test_run" in f or re.match(r"bpf_prog_[0-9a-f]{16}_", f)
               for f in frames):
        return
    # the dispatcher switch at the start of each test run (a text poke and an
    # IPI) is set-up the kernel does not time: newflow, run in chunks,
    # switches often
    if any("bpf_dispatcher_change_prog" in f for f in frames):
        return
    leaf = frames[0] if frames else "?"
    total += 1
    syms[leaf] += 1
    for name, rx in groups:
        if re.search(rx, leaf):
            grp[name] += 1
            break
    else:
        grp["other"] += 1
for line in sys.stdin:
    line = line.strip()
    if not line:
        flush(block); block = []
        continue
    block.append(line.split()[-1] if block else line)
flush(block)
if not total:
    print("  no samples inside the test run"); sys.exit(0)
what = " (its wrapper+floor and its new flows together)" if path == "newflow" else ""
print(f"\n{path}: {ns:.1f} ns/packet{what}, {total} samples inside the test run")
for name, c in grp.most_common():
    print(f"  {100*c/total:5.1f}%  {ns*c/total:6.1f} ns  {name}")
print("  top symbols:")
for s, c in syms.most_common(12):
    print(f"    {100*c/total:5.1f}%  {ns*c/total:6.1f} ns  {s}")
' "$path" "$ns"
}

# profile_lines PATH: perf over `bench -o PATH`, the samples inside xdp_lb
# by source line (tests/tools/jit_lines reads the JIT line table while the
# bench has the program loaded)
profile_lines() {
	local path=$1 data=$tmp/$1.lines.data ns out=$tmp/$1.out pid
	perf record -q -g -o "$data" -- taskset -c "$cpu" build/tests/bench \
		-o "$path" -n 2000000 -r 1 >"$out" 2>&1 &
	pid=$!
	build/tests/tools/jit_lines -w 30 xdp_lb >"$tmp/lines" || { wait $pid; return 1; }
	wait $pid || { echo "bench: profiling $path failed" >&2; return 1; }
	ns=$(sed -n 's/.*: \([0-9.]*\) ns\/packet.*/\1/p' "$out" |
		awk '{ s += $1 } END { if (NR) print s }')
	echo
	echo "$path: xdp_lb by source line (ns: share of the test runs' samples x $ns ns/packet)"
	perf script -i "$data" -F comm,ip,sym,symoff 2>/dev/null |
		python3 scripts/profile-lines.py "$tmp/lines" "$ns" 20
}

if [ "${BENCH_PROFILE:-0}" = lines ]; then
	command -v perf >/dev/null || { echo "bench: perf missing (apt-get install linux-perf)" >&2; exit 1; }
	tmp=$(mktemp -d /tmp/bn-bench.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	for p in ${BENCH_PROFILE_PATHS:-established reply newflow}; do
		profile_lines "$p" || rc=1
	done
elif [ "${BENCH_PROFILE:-0}" = 1 ]; then
	command -v perf >/dev/null || { echo "bench: perf missing (apt-get install linux-perf)" >&2; exit 1; }
	tmp=$(mktemp -d /tmp/bn-bench.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	echo
	echo "profile (perf cpu-clock, CPU $cpu; ns = share x the path's ns/packet; each path"
	echo "behind the wrapper except floor, so wrapper and XDP_TX shares are included)"
	for p in ${BENCH_PROFILE_PATHS:-floor established reply newflow nonvip}; do
		profile_path "$p" || rc=1
	done
fi

[ $rc = 2 ] && echo "bench: a target was missed (exit status 2; docs/benchmarks.md)" >&2

if [ "${BENCH_HAPROXY:-0}" = 1 ]; then
	./scripts/bench-haproxy.sh || rc=$?
fi
exit $rc
