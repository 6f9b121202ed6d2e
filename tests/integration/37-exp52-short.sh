#!/bin/bash
# Experiment 5.2, shortened (scripts/experiment-5.2 --short: 512 MiB
# guests, 40 s of work, VM1 15 s later): the mechanics, not the figures.
# The calibration sizes the work; in every placement both jobs finish and
# their completion times are recorded; the post-copy and pre-copy
# placements each moved a VM when pm0 overloaded; no relocation moved
# none; every job ended with the same checksum (no page lost in a move).
. "$(dirname "$0")/lib.sh"
need_root
command -v gnuplot > /dev/null || skip "needs gnuplot (scripts/install-deps)"
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs (two emulated hosts)"
out=$PP_BUILD/tests/run/37
rm -rf "$out"
"$PP_TOP/scripts/experiment-5.2" --build "$PP_BUILD" --out "$out" --short ||
    fail "experiment-5.2 --short failed"
sum=$out/summary.txt
[ -s "$sum" ] || fail "no summary"
grep -q "^checksums: all equal" "$sum" || fail "checksums differ or are missing"
for run in dedicated postcopy precopy norelocate; do
    line=$(grep "^$run " "$sum") || fail "no $run row"
    echo "$line" | awk '{ exit !($2 ~ /^[0-9.]+$/ && $4 ~ /^[0-9.]+$/) }' ||
        fail "$run: a completion time is missing: $line"
    [ -s "$out/$run/plot.png" ] || fail "$run: no plot"
done
for run in postcopy precopy; do
    grep -q "spread: moved vm1" "$out/$run/report.txt" || fail "$run: vm1 was not moved (vm0 is no_relocate)"
done
for run in dedicated norelocate; do
    grep -q "moves 0 " "$out/$run/report.txt" || fail "$run: a VM was moved"
done
echo PASS
