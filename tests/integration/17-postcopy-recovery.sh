#!/bin/bash
# Post-copy recovery with our series: a post-copy broken while the
# hot-first push runs is resumed on a new channel and loses no page.
#
#  1. TCP over a 1 Gbit/s shaped link, our full set (instant, hot-first
#     with a tracking window, fault windows, the socket in latency mode
#     during the push and paced after it): 100 ms after the switch the
#     source breaks the channel (migrate-pause), the destination listens
#     again (migrate-recover) and the source resumes on the new channel
#     (migrate resume=true).  All 32768 pages of memverify verify, the
#     push was still running when the channel broke and completed on the
#     new one, and the source never tuned a socket that was gone (no
#     warning about socket options in its log); its trace shows the
#     socket in latency mode at the switch, forgotten when the channel
#     broke, tuned again on the new one and paced once the push ended;
#  2. the same over TLS on the shaped link: the socket under TLS is tuned
#     the same way (modes from the trace), every page verifies;
#  3. the same over unix sockets, where the socket is left alone (the
#     trace says why).
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces for the shaped link)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"

inst=it17
net=scripts/pp-net
trap '"$net" down $inst' EXIT
"$net" up $inst 1gbit src dst || fail "could not create the shaped link"
addr=$("$net" addr $inst dst) || fail "no address for the destination"

ours=(--mode postcopy-instant --hot-first --hot-track-ms 300 --window 64)

echo "# 1: TCP, paused during the push, resumed"
migrate_verified 17a "${ours[@]}" --send-buffer 32768 \
    --pacing-rate 120000000 --src-netns "pp-$inst-src" \
    --dst-netns "pp-$inst-dst" --dst-addr "$addr" --pause-after-ms 100 \
    --trace "postpack_sock_*"
expect_json "$OUT" postcopy-recovered true
pushed=$(json_int "$OUT" hot-pushed-ms)
[ "${pushed:-0}" -gt 100 ] ||
    fail "the hot push ended at ${pushed:-?} ms, before the pause at 100 ms: nothing was resumed mid-push"
log=$PP_BUILD/tests/run/17a/src/qemu.log
if grep -iE "setsockopt|socket option|send limits|send-buffer|pacing-rate" "$log"; then
    fail "the source tuned a socket that failed (see $log)"
fi
trace=$PP_BUILD/tests/run/17a/src/trace.log
modes=$(sed -n 's/.*postpack_sock_mode mode=\([a-z]*\).*/\1/p' "$trace" | tr '\n' ' ')
echo "socket modes: $modes"
case "$modes" in
"latency none latency paced "*) echo "ok: latency, closed, latency again, paced" ;;
*) fail "socket modes were '$modes', expected 'latency none latency paced' (see $trace)" ;;
esac

echo "# 2: TLS over TCP, paused during the push, resumed"
migrate_verified 17t "${ours[@]}" --send-buffer 32768 \
    --pacing-rate 120000000 --src-netns "pp-$inst-src" \
    --dst-netns "pp-$inst-dst" --dst-addr "$addr" --pause-after-ms 100 \
    --tls --trace "postpack_sock_*" --trace "qio_channel_tls_new_client"
expect_json "$OUT" postcopy-recovered true
trace=$PP_BUILD/tests/run/17t/src/trace.log
grep -q "qio_channel_tls_new_client" "$trace" ||
    fail "the source never opened a TLS channel (see $trace)"
if grep -iE "setsockopt|socket option|send limits|send-buffer|pacing-rate" \
        "$PP_BUILD/tests/run/17t/src/qemu.log"; then
    fail "the source could not tune the socket under TLS"
fi
modes=$(sed -n 's/.*postpack_sock_mode mode=\([a-z]*\).*/\1/p' "$trace" | tr '\n' ' ')
echo "socket modes under TLS: $modes"
case "$modes" in
"latency none latency paced "*) echo "ok: TLS: latency, closed, latency again, paced" ;;
*) fail "socket modes under TLS were '$modes', expected 'latency none latency paced' (see $trace)" ;;
esac

echo "# 3: unix sockets, paused 100 ms after the switch, resumed"
migrate_verified 17b "${ours[@]}" --pause-after-ms 100 --send-buffer 32768 \
    --trace "postpack_sock_*"
expect_json "$OUT" postcopy-recovered true
trace=$PP_BUILD/tests/run/17b/src/trace.log
grep -q "postpack_sock_skip local socket" "$trace" ||
    fail "the source did not say it left the unix socket alone (see $trace)"
if grep -q "postpack_sock_mode mode=latency" "$trace"; then
    fail "the source tuned a unix socket (see $trace)"
fi
echo "ok: post-copy recovery keeps every page, with and without the tuned socket, and under TLS"
