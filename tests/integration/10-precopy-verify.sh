#!/bin/bash
# Pre-copy migration of a guest running memverify: completes without a
# post-copy phase, the guest keeps running on the destination, and every
# page of memverify's 128 MiB verifies there.
. "$(dirname "$0")/lib.sh"
out=$(ppmig --workload "memverify --mib=128 --pass-ms=2000" --mode precopy \
      --verify --src-cpus 0 --dst-cpus 1 --run-dir "$PP_BUILD/tests/run/10") ||
    fail "ppmig exited with status $?"
echo "$out"
expect_json "$out" status '"completed"'
expect_json "$out" postcopy-switched false
expect_json "$out" postcopy-bytes 0
expect_json "$out" guest-running true
expect_json "$out" verify-pages 32768
expect_json "$out" verify-bad-pages 0
