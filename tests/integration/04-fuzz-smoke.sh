#!/bin/bash
# The libFuzzer harnesses (tests/fuzz) each run a few seconds under ASan
# and UBSan: QMP replies and events, control requests, the INI config,
# hot sets and guest console records.  Any crash, leak, sanitizer report
# or hang fails the test; the long run is `make fuzz FUZZ_SECONDS=N`.
set -u
. "$(dirname "$0")/lib.sh"

ls "$PP_BUILD"/fuzz/fuzz-* > /dev/null 2>&1 ||
    fail "no fuzz harness in $PP_BUILD/fuzz: run 'make check' (builds them)"
out=$("$PP_TOP"/tests/fuzz/run-fuzz --build "$PP_BUILD" \
          --seconds "${PP_FUZZ_SMOKE_SECONDS:-4}")
rc=$?
echo "$out"
[ $rc = 0 ] || fail "a harness failed (inputs in $PP_BUILD/fuzz/crashes)"
# Every harness ran and executed something.
for n in config control guestlog hotset qmp; do
    execs=$(echo "$out" | awk -v n="$n" '$1 == n { print $3 }')
    [ -n "$execs" ] && [ "$execs" -gt 100 ] ||
        fail "harness $n did not run (executions: ${execs:-none})"
done
echo "PASS"
