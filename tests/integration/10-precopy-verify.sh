#!/bin/bash
# Pre-copy migration of a guest running memverify: completes without a
# post-copy phase, the guest keeps running on the destination, and every
# page of memverify's 128 MiB verifies there.
. "$(dirname "$0")/lib.sh"
migrate_verified 10 --mode precopy
expect_json "$OUT" postcopy-switched false
expect_json "$OUT" postcopy-bytes 0
