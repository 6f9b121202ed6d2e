#!/bin/bash
# After a post-copy move our QEMU collapses the destination's RAM into
# transparent huge pages (x-postcopy-collapse, on by default): post-copy
# places every page as a small page and turns THP off on the RAM until
# the end, so without it the guest runs on 4 KiB host pages until
# khugepaged gets round to them (minutes per GiB).
#
#  1. an instant post-copy move of a 512 MiB guest writing 128 MiB: every
#     page verifies after the collapse, the destination's collapse thread
#     reports collapsed bytes and no failure (QEMU trace
#     postcopy_collapse_done), huge pages back at least half of what
#     they backed on the source, and the guest's unused memory stays
#     unbacked: ranges were left small, and the destination's resident
#     memory is at most the source's plus 10%;
#  2. the same with x-postcopy-collapse off (ppmig --no-collapse): no
#     collapse runs, and fewer huge pages than in 1 remain (khugepaged
#     alone).
# Skips where THP is off or the kernel has no MADV_COLLAPSE (before 6.1).
. "$(dirname "$0")/lib.sh"

thp=/sys/kernel/mm/transparent_hugepage/enabled
[ -r $thp ] || skip "no transparent huge pages on this kernel ($thp)"
grep -q '\[never\]' $thp && skip "transparent huge pages are disabled ($thp: never)"

ours=(--mode postcopy-instant --hot-first --window 64 --observe 15
      --dst-cpus 0,1 --trace 'postcopy_collapse*')

echo "# 1: collapse after the move"
migrate_verified 39a "${ours[@]}"
log=$PP_BUILD/tests/run/39a/dst/trace.log
unsupported=$(grep postcopy_collapse_unsupported "$log" | tail -1)
[ -z "$unsupported" ] || skip "this kernel does not collapse (Linux >= 6.1 needed): $unsupported"
done_line=$(grep postcopy_collapse_done "$log" | tail -1)
[ -n "$done_line" ] || fail "the destination did not run the collapse (no postcopy_collapse_done in $log)"
echo "$done_line"
field() { echo "$done_line" | sed -n "s/.*collapsed \([0-9]*\) bytes, \([0-9]*\) failed, \([0-9]*\) left small.*/\\$1/p"; }
collapsed=$(field 1) failed=$(field 2) small=$(field 3)
[ "${collapsed:-0}" -ge $((64 << 20)) ] || fail "collapsed only ${collapsed:-?} bytes (memverify alone writes 128 MiB)"
[ "${failed:-1}" = 0 ] || fail "$failed bytes failed to collapse"
[ "${small:-0}" -gt 0 ] || fail "every range was collapsed: the guest's unused memory is backed now"
src_huge=$(json_int "$OUT" src-anon-huge-kib) huge=$(json_int "$OUT" dst-anon-huge-kib)
src_rss=$(json_int "$OUT" src-rss-kib) rss=$(json_int "$OUT" dst-rss-kib)
[ "${huge:-0}" -ge $((${src_huge:-0} / 2)) ] && [ "${huge:-0}" -gt 0 ] ||
    fail "expected at least half of the source's ${src_huge:-?} KiB of huge pages on the destination, got ${huge:-?} KiB"
[ "${rss:-0}" -gt 0 ] && [ "$rss" -le $((${src_rss:-0} * 11 / 10)) ] ||
    fail "the destination's resident memory ${rss:-?} KiB exceeds the source's ${src_rss:-?} KiB by over 10%"
echo "ok: $((collapsed >> 20)) MiB collapsed, $((small >> 20)) MiB left small; huge pages $((src_huge >> 10)) MiB on the source, $((huge >> 10)) MiB on the destination; RSS $((src_rss >> 10)) / $((rss >> 10)) MiB"

echo "# 2: no collapse (x-postcopy-collapse off)"
migrate_verified 39b "${ours[@]}" --no-collapse
log=$PP_BUILD/tests/run/39b/dst/trace.log
! grep -q postcopy_collapse_start "$log" || fail "the collapse ran with x-postcopy-collapse off"
huge_off=$(json_int "$OUT" dst-anon-huge-kib)
[ "${huge_off:-1}" -ge 0 ] && [ "$huge_off" -lt "$huge" ] ||
    fail "expected fewer huge pages without the collapse: ${huge_off:-?} KiB against $huge KiB"
echo "ok: $((huge_off >> 10)) MiB of huge pages without the collapse (khugepaged only)"
echo PASS
