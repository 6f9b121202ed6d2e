#!/bin/bash
# Post-copy switched right after the start: the destination runs the guest
# almost at once and pulls/receives its pages afterwards; every page of
# memverify's area verifies on the destination.
. "$(dirname "$0")/lib.sh"
migrate_verified 11 --mode postcopy
expect_json "$OUT" postcopy-switched true
pc=$(json_int "$OUT" postcopy-bytes)
[ "${pc:-0}" -gt $((100 * 1024 * 1024)) ] ||
    fail "expected most of the 128 MiB to move in post-copy, got ${pc:-?} bytes"
