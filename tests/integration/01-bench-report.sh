#!/bin/bash
# tools/bench-report.py on made-up results: medians, the stall's 90th
# percentile and worst value and the runs over 100 ms, ratios against the
# best upstream configuration of each metric (named) and a variant's
# against ours, their bootstrap intervals (an interval excludes 1 for a
# clear difference and holds it when two configurations draw from the
# same values), failed runs counted, the same table on every run (fixed
# seed), and bad input refused.
. "$(dirname "$0")/lib.sh"
tmp=$PP_BUILD/tests/run/01
rm -rf "$tmp"
mkdir -p "$tmp"
report=tools/bench-report.py

# scatter/tbf, 7 repetitions.  Switchover: plain ~2.1 ms, preempt ~3.1,
# ours ~1.05 (half of plain, the best upstream), the variant "slow" ~4.2.
# Page requests: ours draws from the same values as plain (the best).
# Pages faulted: plain 1000, preempt 500 (the best), ours 100.
# Longest stall: preempt 30 ms in every run (the best upstream), ours
# 40..90 and one run of 150 (median 70, p90 and worst 150, 1 of 7 over
# 100 ms).  One failed run of preempt.
python3 - "$tmp/results.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[1], "w")
def run(rep, cfg, sw, req, faulted, stall):
    r = {"switchover-ms": sw, "postcopy-requests": req, "faulted-pages": faulted,
         "longest-stall-ms": stall, "rate-before": 100.0, "rate-after": 50.0}
    out.write(json.dumps({"rep": rep, "link": "tbf", "workload": "scatter",
                          "config": cfg, "report": r}) + "\n")
ours_stall = [40, 50, 60, 70, 80, 90, 150]
for rep in range(1, 8):
    jitter = (rep % 3) * 0.1
    run(rep, "upstream-plain", 2.0 + jitter, 100 + 10 * (rep % 4), 1000, 200)
    if rep == 3:
        out.write(json.dumps({"rep": rep, "link": "tbf", "workload": "scatter",
                              "config": "upstream-preempt", "report": None}) + "\n")
    else:
        run(rep, "upstream-preempt", 3.0 + jitter, 4000, 500, 30)
    run(rep, "ours", 1.0 + jitter / 2, 100 + 10 * ((rep + 2) % 4), 100, ours_stall[rep - 1])
    run(rep, "slow", 4.0 + 2 * jitter, 100, 100, 60)
EOF
python3 "$report" "$tmp/results.jsonl" > "$tmp/a.txt" || fail "report exited with $?"
cat "$tmp/a.txt"
python3 "$report" "$tmp/results.jsonl" > "$tmp/b.txt"
cmp -s "$tmp/a.txt" "$tmp/b.txt" || fail "two reports of the same results differ"

# med METRIC: the medians table's line; ratio METRIC: the ratios' line
med() { grep -E "^  $1 " "$tmp/a.txt" | sed -n 1p | grep . || fail "no line for $1"; }
ratio() { grep -E "^  $1 " "$tmp/a.txt" | sed -n 2p | grep . || fail "no ratio line for $1"; }
head=$(grep -E '^  metric ' "$tmp/a.txt")
for col in up-plain up-preempt ours slow; do
    case " $head " in *" $col "*) ;; *) fail "no column $col in: $head" ;; esac
done
rhead=$(grep -E '^  ratio ' "$tmp/a.txt")
for col in ours/best-up slow/best-up slow/ours; do
    case " $rhead " in *" $col "*) ;; *) fail "no ratio column $col in: $rhead" ;; esac
done
grep -q 'medians over 7 repetitions' "$tmp/a.txt" || fail "repetitions not 7"
grep -q 'failed runs: tbf/scatter/upstream-preempt: 1' "$tmp/a.txt" ||
    fail "the failed run is not reported"

# switchover: plain's median 2.1 (the best upstream), ours 1.05 -> 0.50
# against plain, interval below 1; slow 4.2 -> 2.00 against plain, above
# 1; slow against ours 4.00.
read -r -a f <<< "$(med switchover)"
[ "${f[1]}" = 2.1ms ] || fail "plain's median switchover is ${f[1]}, not 2.1ms"
[ "${f[3]}" = 1.05ms ] || fail "our median switchover is ${f[3]}, not 1.05ms"
sw=$(ratio switchover)
python3 - "$sw" <<'EOF' || fail "switchover ratios wrong: $sw"
import re, sys
cells = re.findall(r"(\d+\.\d+) \((\d+\.\d+)-(\d+\.\d+)\)(?: ([a-z-]+))?", sys.argv[1])
assert len(cells) == 3, cells
(r0, a0, b0, n0), (r1, a1, b1, n1), (r2, a2, b2, n2) = cells
assert r0 == "0.50" and n0 == "plain" and float(b0) < 1, cells
assert r1 == "2.00" and n1 == "plain" and float(a1) > 1, cells
assert r2 == "4.00" and float(a2) > 1 and n2 == "", cells
EOF
# page requests: ours and plain draw from the same four values: against
# the best upstream (plain), the interval holds 1.
rq=$(ratio "page requests")
python3 - "$rq" <<'EOF' || fail "page requests interval should hold 1 against plain: $rq"
import re, sys
r, a, b, n = re.findall(r"(\d+\.\d+) \((\d+\.\d+)-(\d+\.\d+)\) ([a-z-]+)", sys.argv[1])[0]
assert float(a) <= 1 <= float(b) and n == "plain", (r, a, b, n)
EOF
# pages faulted: the best upstream is preempt (500): ours 0.20.
ratio "pages faulted" | grep -q ' 0\.20 ([0-9.-]*) preempt' ||
    fail "pages faulted not 0.20 of preempt's: $(ratio 'pages faulted')"
# the stall: ours median 70, p90 and worst 150, 1 of 7 runs over 100 ms;
# preempt (30 ms) is the best upstream.
read -r -a f <<< "$(med 'longest stall')"
[ "${f[4]}" = 70ms ] || fail "our median stall is ${f[4]}, not 70ms"
read -r -a f <<< "$(med 'stall p90')"
[ "${f[4]}" = 150ms ] || fail "our stall p90 is ${f[4]}, not 150ms"
read -r -a f <<< "$(med 'stall worst')"
[ "${f[4]}" = 150ms ] && [ "${f[2]}" = 200ms ] || fail "stall worst wrong: ${f[*]}"
read -r -a f <<< "$(grep -E '^  stall>100ms runs ' "$tmp/a.txt")"
[ "${f[2]}" = 7/7 ] && [ "${f[3]}" = 0/6 ] && [ "${f[4]}" = 1/7 ] && [ "${f[5]}" = 0/7 ] ||
    fail "runs over 100 ms wrong: ${f[*]}"
ratio 'stall worst' | grep -q ' 5\.00.* preempt' || fail "stall worst ratio: $(ratio 'stall worst')"
med "work lost 5 s" | grep -q ' 50% ' || fail "work lost is not 50%"

# --no-ci drops the intervals.
python3 "$report" "$tmp/results.jsonl" --no-ci > "$tmp/c.txt"
! grep -q '([0-9]' "$tmp/c.txt" || fail "--no-ci still prints intervals"
# No file: usage and status 2; a malformed file: status 2 and a message.
python3 "$report" > /dev/null 2>&1; st=$?
[ $st = 2 ] || fail "no argument: status $st, not 2"
echo '{"link": "tbf"}' > "$tmp/bad.jsonl"
python3 "$report" "$tmp/bad.jsonl" > /dev/null 2> "$tmp/err"; st=$?
[ $st = 2 ] && grep -q "without 'workload'" "$tmp/err" || fail "malformed results: status $st, $(cat "$tmp/err")"
echo "bench-report ok"
