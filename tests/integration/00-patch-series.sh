#!/bin/bash
# The patch-series mechanism on a scratch tree: a good series applies (one
# commit per patch), export reproduces it byte for byte, and a broken patch
# stops with a message naming the patch and the failing file.
. "$(dirname "$0")/lib.sh"
tmp=$PP_BUILD/tests/run/00
rm -rf "$tmp"
mkdir -p "$tmp/good" "$tmp/bad"

# A good series: two patches, the second on top of the first.
make_patch() { # FILE SUBJECT OLD NEW
    cat <<EOP
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: postpack test <test@localhost>
Date: Thu, 1 Jan 2026 00:00:00 +0000
Subject: [PATCH] $2

---
 $1 | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/$1 b/$1
--- a/$1
+++ b/$1
@@ -1 +1 @@
-$3
+$4
EOP
}
ver=$(head -n1 "$PP_BUILD/qemu-src/VERSION" 2>/dev/null || echo 10.0.13)
make_patch VERSION "test: first" "$ver" "$ver-pp1" > "$tmp/good/0001-test-first.patch"
make_patch VERSION "test: second" "$ver-pp1" "$ver-pp2" > "$tmp/good/0002-test-second.patch"
printf '# test series\n0001-test-first.patch\n0002-test-second.patch\n' > "$tmp/good/series"

scripts/qemu-source --patches "$tmp/good" prepare "$tmp/tree" || fail "good series did not apply"
[ "$(cat "$tmp/tree/VERSION")" = "$ver-pp2" ] || fail "VERSION is '$(cat "$tmp/tree/VERSION")', expected '$ver-pp2'"
[ "$(git -C "$tmp/tree" rev-list --count postpack-base..HEAD)" = 2 ] || fail "expected one commit per patch"

# Export round trip: the exported patches apply to give the same tree.
mkdir -p "$tmp/exported"
scripts/qemu-source --patches "$tmp/exported" export "$tmp/tree" || fail "export failed"
[ "$(grep -v '^#' "$tmp/exported/series")" = "$(printf '0001-test-first.patch\n0002-test-second.patch')" ] ||
    fail "exported series: $(cat "$tmp/exported/series")"
cp -r "$tmp/exported" "$tmp/exported2"
scripts/qemu-source --patches "$tmp/exported2" export "$tmp/tree" || fail "second export failed"
diff -r "$tmp/exported" "$tmp/exported2" || fail "export is not byte-for-byte stable"

# A broken series: the second patch expects text that is not there.
cp "$tmp/good/0001-test-first.patch" "$tmp/bad/"
make_patch VERSION "test: broken" "no-such-version" "x" > "$tmp/bad/0002-test-broken.patch"
printf '0001-test-first.patch\n0002-test-broken.patch\n' > "$tmp/bad/series"
rm -rf "$tmp/tree2"
msg=$(scripts/qemu-source --patches "$tmp/bad" prepare "$tmp/tree2" 2>&1) && fail "broken series applied"
echo "$msg"
echo "$msg" | grep -q "patch .*/0002-test-broken.patch does not apply (failing file: VERSION)" ||
    fail "error message does not name the patch and the file"
rm -rf "$tmp"
