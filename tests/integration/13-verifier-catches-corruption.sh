#!/bin/bash
# The verifier is not blind: flip bits in one of memverify's pages inside
# the source QEMU's memory (through /proc/PID/mem) before migrating.  ppmig
# must exit 1 and the guest must name the corrupted page.
. "$(dirname "$0")/lib.sh"
[ -w /proc/self/mem ] || skip "cannot write /proc/PID/mem here"
run=$PP_BUILD/tests/run/13
rm -rf "$run"
out=$(ppmig --workload "memverify --mib=64 --pass-ms=1000" --mode precopy \
      --verify --corrupt-page 1000 --run-dir "$run")
rc=$?
echo "$out"
[ $rc = 1 ] || fail "ppmig exited with status $rc, expected 1 (verification failed)"
grep -h "PP memverify bad .* page=1000 " "$run"/src/serial.log "$run"/dst/serial.log ||
    fail "no 'bad page=1000' record on the guest console"
n=$(json_int "$out" verify-bad-pages)
[ "${n:-0}" -ge 1 ] || fail "report shows ${n:-?} bad pages"
