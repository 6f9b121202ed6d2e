#!/bin/bash
# Our QEMU's x-postcopy-instant capability: one migrate command switches
# at once (no migrate-start-postcopy); not a byte goes in pre-copy, and
# every page of memverify's area verifies on the destination.
. "$(dirname "$0")/lib.sh"
migrate_verified 14 --mode postcopy-instant
expect_json "$OUT" postcopy-switched true
expect_json "$OUT" precopy-bytes 0
pc=$(json_int "$OUT" postcopy-bytes)
[ "${pc:-0}" -gt $((128 * 1024 * 1024)) ] ||
    fail "expected all of memverify's 128 MiB in post-copy, got ${pc:-?} bytes"
