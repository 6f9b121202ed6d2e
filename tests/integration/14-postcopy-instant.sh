#!/bin/bash
# Our QEMU's x-postcopy-instant capability: one migrate command switches
# at once (no migrate-start-postcopy); not a byte goes in pre-copy, and
# every page of memverify's area verifies on the destination.
. "$(dirname "$0")/lib.sh"
out=$(ppmig --workload "memverify --mib=128 --pass-ms=2000" --mode postcopy-instant \
      --verify --src-cpus 0 --dst-cpus 1 --run-dir "$PP_BUILD/tests/run/14") ||
    fail "ppmig exited with status $?"
echo "$out"
expect_json "$out" status '"completed"'
expect_json "$out" postcopy-switched true
expect_json "$out" precopy-bytes 0
expect_json "$out" guest-running true
expect_json "$out" verify-pages 32768
expect_json "$out" verify-bad-pages 0
pc=$(json_int "$out" postcopy-bytes)
[ "${pc:-0}" -gt $((128 * 1024 * 1024)) ] ||
    fail "expected all of memverify's 128 MiB in post-copy, got ${pc:-?} bytes"
