#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: the data-plane benchmark (tests/bench.c, docs/benchmarks.md).
#
# build/tests/bench moves itself into a private network namespace
# (unshare), so its veth pair, addresses and routes exist only inside it and
# vanish when it exits. It is pinned to one CPU so that every test run, and
# the per-CPU counters it checks, stay on that CPU.
#
# Usage: scripts/bench.sh [bench options: -n repeats -r rounds -c chunk -b batch]
#   BENCH_CPU=N       CPU to run on (default: the last one)
#   BENCH_PROFILE=1   also sample the whole run with perf (cpu-clock) and
#                     print where the time goes, by symbol (docs/benchmarks.md)
#   BENCH_HAPROXY=1   also run scripts/bench-haproxy.sh (live TCP traffic)
set -eu
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "bench: needs root (BPF test runs, netns)" >&2; exit 1; }
[ -x build/tests/bench ] || { echo "bench: build/tests/bench missing: run make" >&2; exit 1; }

cpu=${BENCH_CPU:-$(( $(nproc) - 1 ))}
rc=0
if [ "${BENCH_PROFILE:-0}" = 1 ]; then
	command -v perf >/dev/null || { echo "bench: perf missing (apt-get install linux-perf)" >&2; exit 1; }
	tmp=$(mktemp -d /tmp/bn-bench.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	perf record -q -C "$cpu" -o "$tmp/perf.data" -- \
		taskset -c "$cpu" build/tests/bench "$@" || rc=$?
	echo
	echo "perf, CPU $cpu, whole run (cpu-clock samples; top 30 symbols):"
	perf report -q -i "$tmp/perf.data" --sort sym 2>/dev/null |
		grep -v '^$' | head -30
else
	taskset -c "$cpu" build/tests/bench "$@" || rc=$?
fi

if [ "${BENCH_HAPROXY:-0}" = 1 ]; then
	./scripts/bench-haproxy.sh || rc=$?
fi
exit $rc
