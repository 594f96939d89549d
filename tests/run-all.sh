#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs every test layer and prints one summary line at the end:
#   unit + BPF packet tests: build/tests/test_* (CUnit, `RESULT:` lines)
#   end-to-end:             vmtests/[0-9]*.sh (TAP-ish `ok` / `not ok` lines)
# Usage: tests/run-all.sh [--unit|--vm] [pattern]
set -u
cd "$(dirname "$0")/.."
mode=all
[ "${1:-}" = --unit ] && { mode=unit; shift; }
[ "${1:-}" = --vm ] && { mode=vm; shift; }
pat=${1:-}
passed=0 failed=0 broken=()

if [ "$mode" != vm ]; then
	for t in build/tests/test_*; do
		[ -x "$t" ] || continue
		[ -n "$pat" ] && [[ "$t" != *$pat* ]] && continue
		echo "=== $t"
		out=$(timeout 600 "$t" 2>&1); rc=$?
		echo "$out" | grep -E 'FAIL|RESULT|Suite|Test:' | tail -40
		r=$(echo "$out" | sed -n 's/^RESULT: \([0-9]*\) passed, \([0-9]*\) failed/\1 \2/p' | tail -1)
		if [ -z "$r" ]; then
			echo "$out" | tail -20
			failed=$((failed + 1)); broken+=("$t (rc=$rc, no result)")
			continue
		fi
		set -- $r
		passed=$((passed + $1)); failed=$((failed + $2))
		[ "$2" -gt 0 ] || [ $rc -ne 0 ] && broken+=("$t")
		[ $rc -ne 0 ] && [ "$2" -eq 0 ] && failed=$((failed + 1))
	done
fi

if [ "$mode" != unit ]; then
	for t in vmtests/[0-9]*.sh; do
		[ -f "$t" ] || continue
		[ -n "$pat" ] && [[ "$t" != *$pat* ]] && continue
		echo "=== $t"
		start=$(date +%s)
		out=$(timeout 900 bash "$t" 2>&1); rc=$?
		echo "$out" | tail -60
		p=$(echo "$out" | grep -c '^ok ')
		f=$(echo "$out" | grep -c '^not ok ')
		passed=$((passed + p)); failed=$((failed + f))
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
			failed=$((failed + 1)); broken+=("$t (rc=$rc)")
		elif [ "$f" -gt 0 ]; then
			broken+=("$t")
		fi
		echo "--- $t: $p ok, $f not ok, rc=$rc, $(( $(date +%s) - start ))s"
	done
fi

for b in "${broken[@]}"; do echo "FAILED: $b"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
