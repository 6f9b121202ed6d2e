#!/bin/bash
# Who may do what on the daemon's sockets, and untrusted requests:
# - the control socket admits root and control_group (checked with
#   SO_PEERCRED even when its file mode is opened up), refuses others with
#   a clear error;
# - the query socket (mode 0666) answers anyone's queries and refuses
#   every command that changes something; the CLI falls back to it for a
#   query when the control socket refuses the user;
# - nulls and wrong types in requests get errors naming the argument;
# - a client that never reads its replies holds up nobody;
# - SIGHUP reloads what needs no restart and refuses the rest;
# - run --daemon with a relative configuration path starts, and a bad
#   configuration fails on the terminal.
. "$(dirname "$0")/lib.sh"
need_root
command -v setpriv > /dev/null || skip "needs setpriv (util-linux)"
run=$PP_BUILD/tests/run/27
rm -rf "$run"; mkdir -p "$run"
chmod 755 "$run"
cfg=$run/cluster.ini
write_cluster_config "$cfg" it27 "$run/state"
cat >> "$cfg" <<END
autopilot = false
control_group = nogroup

[host pm0]
cpus = 0

[host pm1]
cpus = 1
END
chmod 644 "$cfg"
DAEMON_PID=
trap '[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null; wait 2>/dev/null; kill_instance "$run/state" it27' EXIT
start_daemon "$cfg" "$run/daemon.log"
chmod 755 "$run/state"
sock=$run/state/control.sock qsock=$run/state/query.sock
[ "$(stat -c '%a %G' "$sock")" = "660 nogroup" ] ||
    fail "control socket is $(stat -c '%a %G' "$sock"), want 660 nogroup"
[ "$(stat -c %a "$qsock")" = 666 ] || fail "query socket is not 0666"

# raw REQUEST... over SOCKET as UID:GID: one reply line per request
raw() { # UID GID SOCKET REQUEST...
    local uid=$1 gid=$2 s=$3; shift 3
    setpriv --reuid="$uid" --regid="$gid" --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
for r in sys.argv[2:]:
    try:
        f.write(r + "\n"); f.flush()
    except BrokenPipeError:
        pass  # refused at once: the refusal is still there to read
    print(f.readline().strip())
' "$s" "$@"
}
as() { setpriv --reuid="$1" --regid="$2" --clear-groups "${@:3}"; }

# A member of control_group may control; another user may not, even when
# the socket's mode lets it connect.
out=$(raw 65534 65534 "$sock" '{"command": "status"}')
echo "$out" | grep -q '"return"' || fail "nogroup member refused: $out"
chmod 666 "$sock"
out=$(raw 65534 4242 "$sock" '{"command": "status"}')
echo "$out" | grep -q 'permission denied: uid 65534 is not root.*nogroup' ||
    fail "stranger admitted on the control socket: $out"
chmod 660 "$sock"
grep -q 'control socket: permission denied' "$run/daemon.log" ||
    fail "no event for the refused client"

# The query socket: queries for anyone, no commands.
out=$(raw 65534 4242 "$qsock" '{"command": "hosts"}' \
      '{"command": "migrate", "arguments": {"vm": "x", "host": "pm1"}}' \
      '{"command": "stop"}')
echo "$out" | sed -n 1p | grep -q '"name":"pm0"' || fail "hosts on query socket: $out"
echo "$out" | sed -n 2p | grep -q "'migrate' is not a query" ||
    fail "migrate accepted on the query socket: $out"
echo "$out" | sed -n 3p | grep -q "'stop' is not a query" ||
    fail "stop accepted on the query socket: $out"
# The CLI as a stranger: the query works (through the query socket), a
# command is refused.
as 65534 4242 "$CONSOLIDATOR" hosts -c "$cfg" | grep -q pm1 ||
    fail "a stranger's query did not fall back to the query socket"
as 65534 4242 "$CONSOLIDATOR" stop -c "$cfg" 2> "$run/stop.err" &&
    fail "a stranger stopped the daemon"
grep -q 'Permission denied' "$run/stop.err" || fail "unclear refusal: $(cat "$run/stop.err")"

# Typed arguments: null and wrong types are named, never defaulted.
out=$(raw 0 0 "$sock" \
      '{"command": "migrate", "arguments": {"vm": null, "host": "pm1"}}' \
      '{"command": "cancel", "arguments": {"job": "3"}}' \
      '{"command": "stop", "arguments": {"vms": 1}}' \
      '{"command": "status", "arguments": []}' \
      '{"command": null}' \
      '[1, 2]')
expect_line() { # N TEXT
    echo "$out" | sed -n "$1p" | grep -qF "$2" ||
        fail "reply $1 lacks '$2': $(echo "$out" | sed -n "$1p")"
}
expect_line 1 "migrate: argument 'vm' is null, expected a string"
expect_line 2 "cancel: argument 'job' is a string, expected an integer"
expect_line 3 "stop: argument 'vms' is an integer, expected a boolean"
expect_line 4 'expected {\"command\": NAME'
expect_line 5 'expected {\"command\": NAME'
expect_line 6 'expected {\"command\": NAME'

# A client that sends many requests, half-closes and only then reads
# gets every reply (more than the socket buffers hold).
got=$(/usr/bin/python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"command": "hosts"}\n' * 3000)
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.count(b'"return"'), len(data))
PY
)
echo "half-closed client: $got (replies, bytes)"
[ "${got%% *}" = 3000 ] || fail "a half-closed client got ${got%% *} of 3000 replies"

# A client that sends many requests and never reads: others still get
# answers at once, and the daemon lives.
python3 - "$sock" > /dev/null <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = b'{"command": "hosts"}\n' * 20000
try:
    s.sendall(req)
except OSError:
    pass
time.sleep(8)
PY
hog=$!
sleep 1
t0=$(date +%s%N)
"$CONSOLIDATOR" status -c "$cfg" > /dev/null || fail "status failed beside a hog"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "status beside a client that does not read: $ms ms"
[ $ms -lt 1500 ] || fail "status took $ms ms beside a client that does not read"
kill $hog 2>/dev/null; wait $hog 2>/dev/null
kill -0 "$DAEMON_PID" || fail "daemon died"

# SIGHUP: what needs no restart is taken; anything else, or a broken
# file, changes nothing and says why.
autopilot() { C status | sed -n 's/.*autopilot \([a-z]*\).*/\1/p'; }
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
[ "$(autopilot)" = false ] || fail "autopilot is not off at start"
cp "$cfg" "$run/orig.ini"
sed -i 's/^autopilot = false/autopilot = true/' "$cfg"
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do [ "$(autopilot)" = true ] && break; sleep 0.1; done
[ "$(autopilot)" = true ] || fail "SIGHUP did not turn the autopilot on"
grep -q "reload: .*autopilot on" "$run/daemon.log" || fail "no reload event"
sed -i 's/^autopilot = true/autopilot = false/; s/^cpus = 1$/cpus = 0-1/' "$cfg"
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do grep -q "reload refused" "$run/daemon.log" && break; sleep 0.1; done
grep -q "reload refused.*the \[host\] sections changed, which needs a restart" "$run/daemon.log" ||
    fail "a host change was not refused clearly"
[ "$(autopilot)" = true ] || fail "a refused reload changed the autopilot"
echo "[broken" >> "$cfg"
kill -HUP "$DAEMON_PID"
sleep 0.5
[ "$(grep -c "reload refused" "$run/daemon.log")" = 2 ] || fail "a broken file was not refused"
kill -0 "$DAEMON_PID" || fail "daemon died on SIGHUP"
cp "$run/orig.ini" "$cfg"
stop_daemon "$cfg"
[ -e "$qsock" ] && fail "query socket left behind"

# --daemon with a relative configuration path, from its directory: it
# starts, answers and stops; a bad configuration fails on the terminal.
(cd "$run" && "$CONSOLIDATOR" run --daemon -c cluster.ini) ||
    fail "run --daemon failed"
C status > /dev/null || fail "the detached daemon does not answer"
dpid=$(pgrep -f "consolidator run --daemon -c cluster.ini" | head -n1)
[ -n "$dpid" ] || fail "no detached daemon process"
C stop > /dev/null || fail "stop of the detached daemon failed"
for _ in $(seq 1 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$dpid" 2>/dev/null && fail "the detached daemon did not stop"
sed 's/^cpus = 1$/cpus = banana/' "$cfg" > "$run/bad.ini"
msg=$(cd "$run" && "$CONSOLIDATOR" run --daemon -c bad.ini 2>&1) &&
    fail "run --daemon with a bad configuration succeeded"
echo "$msg" | grep -q "bad.ini.*cpus" || fail "unclear --daemon failure: $msg"
echo PASS
