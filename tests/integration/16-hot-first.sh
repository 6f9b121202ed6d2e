#!/bin/bash
# Our QEMU's hot-first push, fault windows and bounded send buffer keep
# every page intact, and a hot set read back after one migration is
# accepted by the next one, which then pushes it without tracking.
#
#  1. instant post-copy with a 300 ms tracking window, a 16 KiB send
#     buffer and fault windows of up to 64 pages: all 32768 pages of
#     memverify verify, the source ranked a hot set (memverify rewrites
#     its whole area every pass) and pushed it, the destination counted
#     its remote faults and their latencies, with TCG the set holds pages
#     only read (code) and the list built (QEMU trace ram_hot_list) puts
#     them, page tables and the guest kernel's pages ahead of the data,
#     the push waited for the destination to load the device state; the
#     hot set is written out;
#  2. a guest of the same shape migrated with that hot set handed in, no
#     tracking window: verified again, and the push list is the handed-in
#     set (no tracking happened); this run traces the fault path (ppmig
#     --trace) and tools/fault-trace.py follows requested pages from the
#     destination's request to their placement;
#     it also counts the pages the destination faulted on (ppmig
#     --count-faults): at least one per request;
#  3. a hot set of the wrong size is refused with a clear error and the
#     guest is not migrated;
#  4. a fault window or sample interval out of QEMU's range is refused,
#     naming the parameter;
#  5. without the access log (x-hot-track-access false: the signals KVM
#     has), the window still ranks memverify's written pages and finds no
#     page only read; every page verifies; the destination recorded the
#     pages its guest faulted on, in fault order (x-query-hot-set there:
#     fault-order);
#  6. that record handed in to the next move (no window, no access log):
#     its pages head the push list (hot-pages-faulted), every page
#     verifies;
#  7. a guest moved twice (ppmig --moves 2, no access log): the second
#     move's source is the QEMU the guest arrived in, whose own fault
#     record heads the push with no hand-in; every page verifies.
. "$(dirname "$0")/lib.sh"
run=$PP_BUILD/tests/run/16
mkdir -p "$run"
hot=$run/hot.json
rm -f "$hot"

ours=(--mode postcopy-instant --hot-first --send-buffer 16384 --window 64)

echo "# 1: tracked hot set"
migrate_verified 16a "${ours[@]}" --hot-track-ms 300 --hot-set-out "$hot" \
    --trace ram_hot_list
tracked=$(json_int "$OUT" hot-pages)
[ "${tracked:-0}" -gt 1000 ] ||
    fail "expected a tracked hot set of memverify's pages, got ${tracked:-?}"
[ "$(json_int "$OUT" hot-tracked-ms)" -ge 250 ] ||
    fail "expected a tracking window of about 300 ms"
json_int "$OUT" hot-pushed-ms | grep -q '^[0-9]' ||
    fail "the source did not report the end of the hot push"
[ "$(json_int "$OUT" remote-faults)" -ge 0 ] ||
    fail "the destination reported no remote-fault counter"
# With TCG the window also sees pages only read (the guest kernel's code
# runs in every sample), which the dirty log alone cannot show.
ro=$(json_int "$OUT" hot-pages-read-only)
if [ "$PP_ACCEL" = tcg ]; then
    [ "${ro:-0}" -gt 0 ] ||
        fail "expected read-only pages in the TCG-tracked hot set, got hot-pages-read-only=${ro:-?}"
    # The guest system's pages went ahead of the data: those only read
    # or walked as page tables, and those the guest kernel accessed
    # (x86 names its MMU indexes; the source traces the list it built).
    list=$(grep -h 'ram_hot_list' "$PP_BUILD/tests/run/16a/src/trace.log" | tail -n 1)
    echo "# source: $list"
    read_ahead=$(echo "$list" | sed -n 's/.*read or walked=\([0-9]*\).*/\1/p')
    kernel_ahead=$(echo "$list" | sed -n 's/.* kernel=\([0-9]*\).*/\1/p')
    [ "${read_ahead:-0}" -ge "$ro" ] ||
        fail "expected at least the $ro read-only pages ahead of the data, got '${list:-no ram_hot_list trace}'"
    [ "${kernel_ahead:-0}" -gt 0 ] ||
        fail "expected pages the guest kernel accessed ahead of the data, got '${list:-no ram_hot_list trace}'"
fi
# The push waited for the destination's device state: its answer came,
# well before the 1 s bound on that wait.
loaded=$(json_int "$OUT" dst-loaded-us)
[ "${loaded:--1}" -ge 0 ] && [ "$loaded" -lt 1000000 ] ||
    fail "expected the destination's device-state answer within 1 s, got dst-loaded-us=${loaded:-?}"
[ -s "$hot" ] || fail "no hot set written to $hot"
grep -q '"id":"pc.ram"' "$hot" || fail "hot set has no pc.ram block: $(head -c 200 "$hot")"
# Bytes: still every non-zero page once (the push sends no page twice).
sent=$(json_int "$OUT" postcopy-bytes)
nz=$(json_int "$OUT" nonzero-pages)
[ "$sent" -le $((nz * 4096 * 102 / 100)) ] ||
    fail "post-copy sent $sent bytes for $nz non-zero pages (> 1.02x)"

echo "# 2: hot set handed in, no tracking, fault path traced"
migrate_verified 16b "${ours[@]}" --hot-set-in "$hot" \
    --trace postcopy_ram_fault_thread_request --trace postcopy_page_req_del \
    --trace migrate_handle_rp_req_pages --trace get_queued_page --count-faults
[ "$(json_int "$OUT" hot-tracked-ms)" = 0 ] ||
    fail "expected no tracking window with a handed-in hot set"
handed=$(json_int "$OUT" hot-pages)
# The push list is the handed-in set (plus nothing: no window ran).
[ "${handed:-0}" -ge "$((tracked * 9 / 10))" ] ||
    fail "handed in $tracked hot pages, the push list had ${handed:-?}"

faults=$(json_int "$OUT" remote-faults)
faulted=$(json_int "$OUT" faulted-pages)
[ "${faulted:--1}" -ge "${faults:-0}" ] ||
    fail "the destination made $faults requests but ppmig counted ${faulted:-?} pages faulted"
trace=$("$PP_TOP/tools/fault-trace.py" "$PP_BUILD/tests/run/16b") ||
    fail "fault-trace.py failed: $trace"
echo "$trace"
followed=$(echo "$trace" | sed -n 's/.* placed, \([0-9]*\) followed through.*/\1/p')
if [ "${faults:-0}" -gt 0 ]; then
    [ "${followed:-0}" -gt 0 ] ||
        fail "$faults remote faults, but fault-trace.py followed none through request, receipt, dequeue and placement"
fi

echo "# 3: a hot set of the wrong size is refused"
bad=$run/bad.json
sed 's/"pages":[0-9]*/"pages":12345/' "$hot" > "$bad"
if out=$(ppmig --workload "memverify --mib=16 --pass-ms=2000" \
          --run-dir "$run/c" "${ours[@]}" --hot-set-in "$bad" 2>&1); then
    fail "a hot set for a different RAM size was accepted: $out"
fi
echo "$out" | grep -q "x-set-hot-set: block 'pc.ram' has" ||
    fail "expected a clear x-set-hot-set error, got: $out"
echo "ok: bad hot set refused"

echo "# 4: an out-of-range fault window is refused by QEMU, naming the parameter"
if out=$(ppmig --workload "memverify --mib=16 --pass-ms=2000" \
          --run-dir "$run/d" --mode postcopy-instant --window 1000 2>&1); then
    fail "x-postcopy-window 1000 was accepted: $out"
fi
echo "$out" | grep -q "x-postcopy-window" ||
    fail "expected an error naming x-postcopy-window, got: $out"
echo "ok: bad window refused"
if out=$(ppmig --workload "memverify --mib=16 --pass-ms=2000" \
          --run-dir "$run/d2" --mode postcopy-instant --hot-first \
          --hot-track-ms 100 --hot-sample-ms 2 2>&1); then
    fail "x-hot-sample-ms 2 was accepted: $out"
fi
echo "$out" | grep -q "x-hot-sample-ms" ||
    fail "expected an error naming x-hot-sample-ms, got: $out"
echo "ok: bad sample interval refused"

echo "# 5: no access log: ranked from writes only, as under KVM"
dhot=$run/dst-hot.json
rm -f "$dhot"
migrate_verified 16e "${ours[@]}" --hot-track-ms 300 --no-access-log \
    --dst-hot-set-out "$dhot"
kvmlike=$(json_int "$OUT" hot-pages)
[ "${kvmlike:-0}" -gt 1000 ] ||
    fail "expected the written pages ranked without the access log, got ${kvmlike:-?}"
[ "$(json_int "$OUT" hot-pages-read-only)" = 0 ] ||
    fail "x-hot-track-access false still found pages only read"
echo "ok: $kvmlike hot pages from the dirty log alone"
faults=$(json_int "$OUT" remote-faults)
[ "${faults:-0}" -gt 0 ] || fail "expected remote faults in run 16e, got ${faults:-?}"
recorded=$(python3 -c '
import json, sys
blocks = json.load(open(sys.argv[1]))
print(sum(len(b.get("fault-order", [])) for b in blocks))' "$dhot") ||
    fail "cannot read the destination's hot set $dhot"
[ "$recorded" -gt 0 ] && [ "$recorded" -le 65536 ] ||
    fail "the destination made $faults requests but recorded $recorded faulted pages"
echo "ok: the destination recorded $recorded faulted pages in fault order"

echo "# 6: the fault record heads the next push"
migrate_verified 16f "${ours[@]}" --no-access-log --hot-set-in "$dhot"
head_faulted=$(json_int "$OUT" hot-pages-faulted)
[ "${head_faulted:-0}" = "$recorded" ] ||
    fail "handed in $recorded faulted pages, the push list began with ${head_faulted:-?}"
echo "ok: the push list began with the $head_faulted pages faulted last time"

echo "# 7: moved twice: the QEMU's own record heads the second push"
migrate_verified 16g "${ours[@]}" --hot-track-ms 300 --no-access-log --moves 2
own=$(json_int "$OUT" hot-pages-faulted)
[ "${own:-0}" -gt 0 ] ||
    fail "the second move's push list did not begin with the pages faulted after the first (hot-pages-faulted=${own:-?})"
echo "ok: the second move pushed the $own pages faulted after the first one first"
