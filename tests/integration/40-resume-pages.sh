#!/bin/bash
# The hot-first push starts with the pages the vCPUs resume on (patch
# 0022, migration.x-hot-resume-pages, on by default): at the switch,
# with the VM stopped, the source reads each vCPU's paging structures
# and the pages of its code and stack from the guest's page tables, so
# the guest's first steps on the destination are not a chain of remote
# faults.  Run without TCG's access log, as a KVM user gets it:
#
#  1. instant post-copy, 300 ms window: every page of memverify verifies;
#     the source took the resume pages (QEMU trace ram_hot_resume: at
#     least the 5 pages from the page-table root to the code page of a
#     64-bit guest, at most the 4096 small pages of its 16 MiB) after it
#     built the push list (trace ram_hot_list), at the switch;
#  2. the same with the property off (ppmig --no-resume-pages): nothing
#     taken, every page verifies.
. "$(dirname "$0")/lib.sh"

ours=(--mode postcopy-instant --hot-first --window 64 --hot-track-ms 300
      --no-access-log --trace ram_hot_resume --trace ram_hot_list)

echo "# 1: resume pages head the push"
migrate_verified 40a "${ours[@]}"
log=$PP_BUILD/tests/run/40a/src/trace.log
line=$(grep ram_hot_resume "$log" | tail -1)
[ -n "$line" ] || fail "the source took no resume pages (no ram_hot_resume in $log)"
echo "$line"
pages=$(echo "$line" | sed -n 's/.*ram_hot_resume pages=\([0-9]*\) .*/\1/p')
[ "${pages:-0}" -ge 5 ] && [ "$pages" -le 4096 ] ||
    fail "expected 5 to 4096 resume pages, got ${pages:-?}"
order=$(grep -o 'ram_hot_list\|ram_hot_resume' "$log" | tr '\n' ' ')
case $order in
"ram_hot_list ram_hot_resume ") ;;
*) fail "expected the list built, then the resume pages taken at the switch; trace order: $order" ;;
esac
echo "ok: $pages resume pages taken at the switch"

echo "# 2: x-hot-resume-pages off"
migrate_verified 40b "${ours[@]}" --no-resume-pages
log=$PP_BUILD/tests/run/40b/src/trace.log
grep -q ram_hot_resume "$log" && fail "resume pages were taken with the property off"
echo "all good"
