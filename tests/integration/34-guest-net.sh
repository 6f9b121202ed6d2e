#!/bin/bash
# Guest networking (guest_net): a VM's virtio-net NIC on a tap of its
# host's guest bridge, reached from the client namespace wherever the VM
# runs.  The guest serves busybox httpd (a static page and the bankpage
# CGI); a client asks every 200 ms while the VM moves pm0 -> pm1 with
# post-copy and back with pre-copy: after each move the answers come
# from the new host (the old tap has no carrier), and the stream goes on.
# Then ppmig --net-tap moves a serving guest between two taps of one host.
. "$(dirname "$0")/lib.sh"
need_root
run=$PP_BUILD/tests/run/34
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini
write_cluster_config "$cfg" it34 "$run/state"
cat >> "$cfg" <<END
autopilot = false
guest_net = true

[host pm0]
cpus = 0

[host pm1]
cpus = 1

[vm web]
memory = 256
host = pm0
address = 10.78.0.11/24
workload = httpd -f -p 80 -h /www
END
DAEMON_PID=
POLLER=
trap '[ -n "$POLLER" ] && kill "$POLLER" 2>/dev/null; [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null; wait 2>/dev/null; kill_instance "$run/state" it34' EXIT
start_daemon "$cfg" "$run/daemon.log"
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
client() { ip netns exec pp-it34-client "$@"; }
# GET URL once from the client namespace: "OK bytes" or "FAIL why"
get() {
    client python3 -c '
import sys, urllib.request
try:
    b = urllib.request.urlopen(sys.argv[1], timeout=5).read()
    print("OK", len(b))
except Exception as e:
    print("FAIL", e)' "$1"
}
for _ in $(seq 1 300); do
    grep -aq "PP init net " "$run"/state/run/web/boot/serial.log 2>/dev/null && break
    grep -a "PP init error" "$run"/state/run/web/boot/serial.log 2>/dev/null && fail "the guest's network failed"
    sleep 0.2
done
grep -a "PP init net " "$run"/state/run/web/boot/serial.log || fail "the guest reported no network"
C vms --json | tr -d ' \n' | grep -q '"address":"10.78.0.11/24","mac":"52:54:00:' ||
    fail "vms --json does not show the VM's address and MAC"
grep -aq "PP init net .*addr=10.78.0.11/24 mac=52:54:00:" "$run"/state/run/web/boot/serial.log ||
    fail "wrong address or MAC in the guest"
ok=
for _ in $(seq 1 50); do
    r=$(get http://10.78.0.11/index.html)
    case $r in OK*) ok=1; break ;; esac
    sleep 0.2
done
[ -n "$ok" ] || fail "the guest's web server does not answer: $r"
r=$(get "http://10.78.0.11/cgi-bin/bank?work=1&kib=64")
echo "# bank page: $r"
case $r in "OK "[0-9][0-9][0-9][0-9]*) ;; *) fail "the CGI page did not come: $r" ;; esac

# The poller: one request every 200 ms, "time status" per line.
client python3 -u -c '
import sys, time, urllib.request
while True:
    t = time.time()
    try:
        urllib.request.urlopen(sys.argv[1], timeout=3).read()
        s = "OK"
    except Exception:
        s = "FAIL"
    print("%.3f %s %.3f" % (t, s, time.time() - t))
    time.sleep(max(0, 0.2 - (time.time() - t)))' "http://10.78.0.11/cgi-bin/bank?work=1&kib=64" \
    > "$run/poll.log" 2>&1 &
POLLER=$!
sleep 2
tap=$(ip -n pp-it34-pm0 -o link show master vmbr0 | awk -F': ' '$2 ~ /^pv/ { print $2 }' | sed 's/@.*//')
[ -n "$tap" ] || fail "no VM tap on pm0's guest bridge"
ip -n pp-it34-pm0 link show "$tap" | grep -q "LOWER_UP" || fail "pm0's tap $tap is not attached"

moved() { # MODE TO
    local t0 out
    t0=$(date +%s.%N)
    out=$(C migrate web "$2" --mode="$1" --wait --json) || fail "$1 move failed: $out"
    echo "$out" | grep -q '"state": "done"' || fail "$1 move not done"
    sleep 3
    # after the move: every answer of the last 2 s came
    python3 - "$run/poll.log" "$t0" <<'PY' || fail "answers stopped after the $1 move"
import sys, time
rows = [l.split() for l in open(sys.argv[1]) if l.count(" ") == 2]
t0, now = float(sys.argv[2]), time.time()
during = [r for r in rows if float(r[0]) >= t0]
late = [r for r in rows if float(r[0]) >= now - 2.0]
fails = sum(1 for r in during if r[1] != "OK")
print("# %d requests since the move started, %d failed; %d in the last 2 s, %d ok"
      % (len(during), fails, len(late), sum(1 for r in late if r[1] == "OK")))
sys.exit(0 if late and all(r[1] == "OK" for r in late) else 1)
PY
}
moved postcopy pm1
C vms | grep -q '^web *pm1 *running' || fail "web is not on pm1"
ip -n pp-it34-pm1 link show "$tap" | grep -q "LOWER_UP" || fail "pm1's tap is not attached"
ip -n pp-it34-pm0 link show "$tap" | grep -q "NO-CARRIER" || fail "pm0's tap still has a carrier"
moved precopy pm0
C vms | grep -q '^web *pm0 *running' || fail "web is not back on pm0"
ip -n pp-it34-pm0 link show "$tap" | grep -q "LOWER_UP" || fail "pm0's tap is not attached again"
kill "$POLLER"; wait "$POLLER" 2>/dev/null; POLLER=
stop_daemon "$cfg"

# ppmig: the caller makes the taps; source and destination in one
# namespace on two taps.
"$PP_TOP/scripts/pp-net" up it34 none pm0 pm1
"$PP_TOP/scripts/pp-net" guestnet it34 none pm0 pm1
"$PP_TOP/scripts/pp-net" tap it34 pm0 mta
"$PP_TOP/scripts/pp-net" tap it34 pm0 mtb
ppmig --mem 256 --workload "httpd -f -p 80 -h /www" --net-tap mta:mtb \
    --guest-addr 10.78.0.12/24 --src-netns pp-it34-pm0 --dst-netns pp-it34-pm0 \
    --settle 4 --observe 6 --mode postcopy --run-dir "$run/ppmig" \
    > "$run/ppmig.json" 2> "$run/ppmig.err" &
mig=$!
# The guest answers before the move and from the destination after it
# (ppmig says "completed" when every page is there; it then watches the
# guest on the destination for 6 s, the source stopped).
before= after=
for _ in $(seq 1 300); do
    kill -0 "$mig" 2>/dev/null || break
    if [ -z "$before" ]; then
        case $(get http://10.78.0.12/index.html) in OK*) before=1 ;; esac
    elif grep -q "completed in" "$run/ppmig.err"; then
        case $(get http://10.78.0.12/index.html) in OK*) after=1; break ;; esac
    fi
    sleep 0.2
done
wait "$mig" || fail "ppmig failed: $(cat "$run/ppmig.json")"
[ -n "$before" ] || fail "ppmig's guest did not answer on the source"
[ -n "$after" ] || fail "ppmig's guest did not answer from the destination's tap"
echo PASS
