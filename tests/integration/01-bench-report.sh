#!/bin/bash
# tools/bench-report.py on made-up results: medians, ratios and their
# bootstrap intervals (an interval excludes 1 for a clear difference and
# holds it when two configurations draw from the same values), a variant
# gets its own columns (against upstream and against ours), failed runs
# are counted, the table is the same on every run (fixed seed), and bad
# input is refused.
. "$(dirname "$0")/lib.sh"
tmp=$PP_BUILD/tests/run/01
rm -rf "$tmp"
mkdir -p "$tmp"
report=tools/bench-report.py

# scatter/tbf: ours switches over in half upstream-plain's time; its
# faults draw from the same values as plain's.  One variant, "slow",
# switches in twice plain's time.  One failed run of preempt.
python3 - "$tmp/results.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[1], "w")
def run(rep, cfg, sw, faults):
    r = {"switchover-ms": sw, "postcopy-requests": faults,
         "rate-before": 100.0, "rate-after": 50.0}
    out.write(json.dumps({"rep": rep, "link": "tbf", "workload": "scatter",
                          "config": cfg, "report": r}) + "\n")
for rep in range(1, 8):
    jitter = (rep % 3) * 0.1
    run(rep, "upstream-plain", 2.0 + jitter, 100 + 10 * (rep % 4))
    if rep == 3:
        out.write(json.dumps({"rep": rep, "link": "tbf", "workload": "scatter",
                              "config": "upstream-preempt", "report": None}) + "\n")
    else:
        run(rep, "upstream-preempt", 3.0 + jitter, 4000)
    run(rep, "ours", 1.0 + jitter / 2, 100 + 10 * ((rep + 2) % 4))
    run(rep, "slow", 4.0 + 2 * jitter, 100)
EOF
python3 "$report" "$tmp/results.jsonl" > "$tmp/a.txt" || fail "report exited with $?"
cat "$tmp/a.txt"
python3 "$report" "$tmp/results.jsonl" > "$tmp/b.txt"
cmp -s "$tmp/a.txt" "$tmp/b.txt" || fail "two reports of the same results differ"

# line METRIC: the table's line for METRIC
line() { grep -E "^  $1 " "$tmp/a.txt" || fail "no line for $1"; }
head=$(grep -E '^  metric ' "$tmp/a.txt")
for col in up-plain up-preempt ours slow ours/plain ours/preempt slow/plain slow/preempt slow/ours; do
    case " $head " in *" $col "*) ;; *) fail "no column $col in: $head" ;; esac
done
grep -q 'medians over 7 repetitions' "$tmp/a.txt" || fail "repetitions not 7"
grep -q 'failed runs: tbf/scatter/upstream-preempt: 1' "$tmp/a.txt" ||
    fail "the failed run is not reported"

# switchover: plain's median 2.1, ours 1.05 -> 0.50, interval below 1;
# slow 4.2 -> 2.00, interval above 1; slow against ours 4.00.
sw=$(line switchover)
read -r -a f <<< "$sw"
[ "${f[1]}" = 2.1ms ] || fail "plain's median switchover is ${f[1]}, not 2.1ms"
[ "${f[3]}" = 1.05ms ] || fail "our median switchover is ${f[3]}, not 1.05ms"
[ "${f[5]}" = 0.50 ] || fail "ours/plain switchover ratio is ${f[5]}, not 0.50"
python3 - "$sw" <<'EOF' || fail "switchover intervals wrong: $sw"
import re, sys
cis = [(float(a), float(b)) for a, b in re.findall(r"\((\d+\.\d+)-(\d+\.\d+)\)", sys.argv[1])]
# ours/plain, ours/preempt, slow/plain, slow/preempt, slow/ours
assert len(cis) == 5, cis
assert cis[0][1] < 1 and cis[0][0] <= 0.5 <= cis[0][1], cis
assert cis[2][0] > 1, cis
assert cis[4][0] <= 4.0 <= cis[4][1] and cis[4][0] > 1, cis
EOF
# faults: ours and plain draw from the same four values: the interval
# holds 1.
fl=$(line "remote faults")
python3 - "$fl" <<'EOF' || fail "faults interval should hold 1: $fl"
import re, sys
a, b = re.findall(r"\((\d+\.\d+)-(\d+\.\d+)\)", sys.argv[1])[0]
assert float(a) <= 1 <= float(b), (a, b)
EOF
line "work lost 5 s" | grep -q ' 50% ' || fail "work lost is not 50%"

# --no-ci drops the intervals.
python3 "$report" "$tmp/results.jsonl" --no-ci > "$tmp/c.txt"
! grep -q '(' "$tmp/c.txt" || fail "--no-ci still prints intervals"
# No file: usage and status 2.
python3 "$report" > /dev/null 2>&1; st=$?
[ $st = 2 ] || fail "no argument: status $st, not 2"
echo "bench-report ok"
