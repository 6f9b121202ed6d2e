#!/bin/bash
# Post-copy after a pre-copy phase: pre-copy runs for 1 s at a bandwidth
# too low to finish (16 MiB/s for 128 MiB), then switches to post-copy.
# Both phases carried pages and every page verifies on the destination.
. "$(dirname "$0")/lib.sh"
migrate_verified 12 --mode postcopy-after=1 --max-bandwidth 16
expect_json "$OUT" postcopy-switched true
pre=$(json_int "$OUT" precopy-bytes)
post=$(json_int "$OUT" postcopy-bytes)
[ "${pre:-0}" -gt $((4 * 1024 * 1024)) ] || fail "pre-copy phase sent only ${pre:-?} bytes"
[ "${post:-0}" -gt $((4 * 1024 * 1024)) ] || fail "post-copy phase sent only ${post:-?} bytes"
