#!/bin/bash
# Post-copy switched right after the start: the destination runs the guest
# almost at once and pulls/receives its pages afterwards; every page of
# memverify's area verifies on the destination.
. "$(dirname "$0")/lib.sh"
out=$(ppmig --workload "memverify --mib=128 --pass-ms=2000" --mode postcopy \
      --verify --src-cpus 0 --dst-cpus 1 --run-dir "$PP_BUILD/tests/run/11") ||
    fail "ppmig exited with status $?"
echo "$out"
expect_json "$out" status '"completed"'
expect_json "$out" postcopy-switched true
expect_json "$out" guest-running true
expect_json "$out" verify-pages 32768
expect_json "$out" verify-bad-pages 0
pc=$(json_int "$out" postcopy-bytes)
[ "${pc:-0}" -gt $((100 * 1024 * 1024)) ] ||
    fail "expected most of the 128 MiB to move in post-copy, got ${pc:-?} bytes"
