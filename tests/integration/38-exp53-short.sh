#!/bin/bash
# Experiment 5.3, shortened (scripts/experiment-5.3 --short --runs
# postcopy: sessions and think time divided by 5, 90 s of load): the
# mechanics, not the figures.  The page's cost is calibrated; both VMs
# answer and every response is classed good, tolerable or failed; pm0
# overloads as VM1's sessions rise and the policy moves a VM; the plot
# is drawn.
. "$(dirname "$0")/lib.sh"
need_root
command -v gnuplot > /dev/null || skip "needs gnuplot (scripts/install-deps)"
command -v siege > /dev/null || skip "needs siege (scripts/install-deps)"
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs (two emulated hosts)"
out=$PP_BUILD/tests/run/38
rm -rf "$out"
"$PP_TOP/scripts/experiment-5.3" --build "$PP_BUILD" --out "$out" --short --runs postcopy ||
    fail "experiment-5.3 --short failed"
rep=$out/postcopy/report.txt
[ -s "$rep" ] || fail "no report"
cat "$rep"
for vm in vm0 vm1; do
    line=$(grep "^  $vm: " "$rep") || fail "no line for $vm"
    n=$(echo "$line" | sed 's/.*: \([0-9]*\) responses.*/\1/')
    [ "$n" -gt 20 ] || fail "$vm answered only $n times"
    # good + tolerable + failed = every response
    echo "$line" | awk -v n="$n" '{
        for (i = 1; i <= NF; i++) if ($i == "good" || $i == "tolerable" || $i == "failed") s += $(i + 1)
        exit !(s == n) }' || fail "$vm: the classes do not add up: $line"
done
lines=$(($(wc -l < "$out/postcopy/responses.csv") - 1))
grep -q "spread: moved vm0" "$rep" || fail "vm0 was not moved when pm0 overloaded (vm1 is no_relocate)"
[ -s "$out/postcopy/plot.png" ] || fail "no plot"
[ -s "$out/summary.txt" ] || fail "no summary"
echo "# $lines responses"
echo PASS
