#!/bin/bash
# The KVM lane: what our users run.  Where KVM can boot our guest (the
# same probe as make's ACCEL=auto, scripts/probe-accel), the hot-first
# post-copy path runs under -accel kvm whatever accelerator the other
# tests use:
#  1. a post-copy move with a 300 ms tracking window: every page of
#     memverify's 64 MiB verifies; the window ranked the written pages
#     from the dirty log alone (hot pages found, none "only read": KVM
#     has no access log), its samples held the BQL a bounded time and our
#     structures stayed under 1% of guest RAM;
#  2. the same guest moved twice: its QEMU recorded the pages the guest
#     faulted on when it arrived, and the second move's push list starts
#     with them (hot-pages-faulted);
#  3. our qtests in upstream's migration-test (x-postcopy-instant,
#     hot-set hand-in), with KVM.
# Elsewhere it skips, saying why.  PP_KVM_LANE_TCG=1 runs the lane's
# steps with TCG and without its access log (the KVM-like signals), to
# check this script where KVM cannot run.
. "$(dirname "$0")/lib.sh"
QEMU=$PP_BUILD/qemu/qemu-system-x86_64
lane_accel=kvm
lane_args=()
if [ "${PP_KVM_LANE_TCG:-0}" = 1 ]; then
    lane_accel=tcg
    lane_args=(--no-access-log)
    echo "# PP_KVM_LANE_TCG=1: the lane's steps with TCG, no access log"
elif [ ! -e /dev/kvm ]; then
    skip "no /dev/kvm on this host: the KVM lane runs where KVM can boot a guest"
elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    skip "/dev/kvm is not readable and writable by $(id -un)"
else
    accel=$(PROBE_ACCEL_TIMEOUT=${PROBE_ACCEL_TIMEOUT:-30} "$PP_TOP/scripts/probe-accel" \
            "$QEMU" "$PP_BUILD/guest/vmlinuz" "$PP_BUILD/guest/initrd.img") ||
        fail "scripts/probe-accel failed"
    if [ "$accel" != kvm ]; then
        skip "/dev/kvm is present but cannot boot our guest here (scripts/probe-accel: QEMU -accel kvm -cpu host did not reach the guest's init); the KVM lane runs where it can"
    fi
fi
PP_ACCEL=$lane_accel
run=$PP_BUILD/tests/run/18
rm -rf "$run"; mkdir -p "$run"
MEM=512
wl="memverify --mib=64 --pass-ms=1000"
ours=(--mode postcopy-instant --hot-first --hot-track-ms 300 --verify
      --src-cpus 0 --dst-cpus 1 -m $MEM "${lane_args[@]}")

echo "# 1: one move with $lane_accel"
OUT=$(ppmig --workload "$wl" --run-dir "$run/a" "${ours[@]}") ||
    fail "ppmig exited with status $?"
echo "$OUT"
expect_json "$OUT" status '"completed"'
expect_json "$OUT" verify-bad-pages 0
expect_json "$OUT" hot-pages-read-only 0
hot=$(json_int "$OUT" hot-pages)
[ "${hot:-0}" -gt 1000 ] ||
    fail "expected memverify's written pages ranked from the dirty log, got ${hot:-?}"
samples=$(json_int "$OUT" hot-samples)
[ "${samples:-0}" -ge 5 ] || fail "expected the window's samples, got ${samples:-?}"
held=$(json_int "$OUT" hot-sample-max-us)
[ "${held:-999999999}" -lt 1000000 ] ||
    fail "a tracking sample held the BQL ${held:-?} us"
bytes=$(json_int "$OUT" hot-bytes)
[ "${bytes:-0}" -gt 0 ] && [ "$bytes" -lt $((MEM * 1048576 / 100)) ] ||
    fail "our structures took ${bytes:-?} bytes, not under 1% of $MEM MiB"
echo "ok: $hot hot pages, $samples samples (BQL at most $held us), $bytes bytes"

echo "# 2: a second move starts from the first arrival's faults"
OUT=$(ppmig --workload "$wl" --run-dir "$run/b" "${ours[@]}" --moves 2) ||
    fail "ppmig exited with status $?"
echo "$OUT"
expect_json "$OUT" status '"completed"'
expect_json "$OUT" verify-bad-pages 0
faulted=$(json_int "$OUT" hot-pages-faulted)
[ "${faulted:-0}" -gt 0 ] ||
    fail "the second move's push list holds no recorded fault (${faulted:-?})"
echo "ok: the second move's push list starts with $faulted recorded pages"

echo "# 3: our qtests with $lane_accel"
MT=$PP_BUILD/qemu/tests/qtest/migration-test
[ -x "$MT" ] || fail "$MT is missing: run make check"
sed -e "s|@QEMU@|$QEMU|" -e "s|@ACCEL@|$lane_accel|" \
    -e "s|@FIRMWARE@|/usr/share/seabios /usr/share/qemu /usr/lib/ipxe/qemu|" \
    "$PP_TOP/tests/qtest-wrapper.sh" > "$run/qemu-system-x86_64"
chmod +x "$run/qemu-system-x86_64"
for p in /x86_64/migration/postcopy/x-instant/plain \
         /x86_64/migration/postcopy/x-hot-set/hand-in; do
    QTEST_QEMU_BINARY=$run/qemu-system-x86_64 timeout 900 "$MT" --tap -p "$p" \
        > "$run/qtest.log" 2>&1 || { cat "$run/qtest.log"; fail "$p with $lane_accel"; }
    grep -q "^ok .*$p\$" "$run/qtest.log" || { cat "$run/qtest.log"; fail "$p did not pass"; }
    echo "ok: $p with $lane_accel"
done
echo "all good"
