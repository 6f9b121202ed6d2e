# Helpers for integration tests (sourced).  Tests run from the project
# root with PP_BUILD (build directory) and PP_ACCEL set by tests/run-tests.
set -u
PP_BUILD=$(cd "${PP_BUILD:-build}" && pwd)
PP_TOP=${PP_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PP_ACCEL=${PP_ACCEL:-tcg}
PPMIG=$PP_BUILD/bin/ppmig

skip() { echo "SKIP: $*"; exit 77; }
fail() {
    echo "FAIL: $*"
    # The daemon's own account, for a failure seen only in CI's output.
    if [ -n "${DAEMON_LOG:-}" ] && [ -f "$DAEMON_LOG" ]; then
        echo "last lines of $DAEMON_LOG:"
        tail -n 20 "$DAEMON_LOG" | cut -c1-300 | sed 's/^/  /'
    fi
    exit 1
}

# Run ppmig with our build and accelerator, JSON report on stdout.
ppmig() {
    "$PPMIG" --qemu "$PP_BUILD/qemu/qemu-system-x86_64" \
        --kernel "$PP_BUILD/guest/vmlinuz" --initrd "$PP_BUILD/guest/initrd.img" \
        --accel "$PP_ACCEL" --json "$@"
}

# migrate_verified ID ARGS...: boot a guest with memverify on 128 MiB,
# migrate it with ppmig ARGS (source on CPU 0, destination on CPU 1) and
# check what every mode must give: completed, the guest running on the
# destination, all 32768 pages verified, none bad.  The JSON report is
# left in $OUT for mode-specific checks.
migrate_verified() {
    id=$1; shift
    OUT=$(ppmig --workload "memverify --mib=128 --pass-ms=2000" --verify \
          --src-cpus 0 --dst-cpus 1 --run-dir "$PP_BUILD/tests/run/$id" "$@") ||
        fail "ppmig exited with status $?"
    echo "$OUT"
    expect_json "$OUT" status '"completed"'
    expect_json "$OUT" guest-running true
    expect_json "$OUT" verify-pages 32768
    expect_json "$OUT" verify-bad-pages 0
}

# expect_json JSON KEY VALUE: the report's KEY is exactly VALUE (JSON text).
expect_json() {
    case $1 in
    *"\"$2\":$3,"*|*"\"$2\":$3}"*) echo "ok: $2 = $3" ;;
    *) fail "expected \"$2\":$3 in report: $1" ;;
    esac
}

# json_int JSON KEY: print the integer KEY of the report.
json_int() {
    echo "$1" | sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9]*\).*/\1/p"
}

for f in "$PPMIG" "$PP_BUILD/qemu/qemu-system-x86_64" "$PP_BUILD/guest/initrd.img"; do
    [ -e "$f" ] || fail "$f is missing: run 'make check' (builds everything first)"
done

# ---- consolidator helpers ----
CONSOLIDATOR=${PP_CONSOLIDATOR:-$PP_BUILD/bin/consolidator}

# write_cluster_config FILE INSTANCE STATE_DIR: the [consolidator] section
# for our build; callers append [policy], [host] and [vm] sections.
write_cluster_config() {
    cat > "$1" <<EOC
[consolidator]
name = $2
state_dir = $3
qemu = $PP_BUILD/qemu/qemu-system-x86_64
kernel = $PP_BUILD/guest/vmlinuz
initrd = $PP_BUILD/guest/initrd.img
accel = $PP_ACCEL
EOC
}

# start_daemon CONFIG LOG: run the daemon in the background; wait until
# its control socket answers.  Sets DAEMON_PID and DAEMON_LOG.
start_daemon() {
    "$CONSOLIDATOR" run -c "$1" > "$2" 2>&1 &
    DAEMON_PID=$!
    DAEMON_LOG=$2
    for _ in $(seq 1 300); do
        "$CONSOLIDATOR" status -c "$1" > /dev/null 2>&1 && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$2"; fail "daemon exited"; }
        sleep 0.2
    done
    cat "$2"
    fail "daemon did not open its control socket"
}

# wait_fill SERIAL_LOG VM MIB: wait (up to 120 s) until the guest whose
# console is SERIAL_LOG has filled MIB of memory (pp.fill at boot); a
# move before that carries mostly zero pages and ends at once.
wait_fill() {
    for _ in $(seq 1 240); do
        grep -aq "PP memtouch ready .*fill_mib=$3" "$1" && return 0
        sleep 0.5
    done
    fail "$2 did not fill its memory"
}

# kill_daemon: SIGKILL the daemon start_daemon started, as a crash would.
kill_daemon() {
    kill -9 "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=
}

# http_get URL: the body, or failure.
http_get() {
    /usr/bin/python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"
}

# stop_daemon CONFIG [--keep-vms]: ask it to stop (with its VMs unless
# --keep-vms), wait for it.
stop_daemon() {
    if [ "${2:-}" = --keep-vms ]; then
        "$CONSOLIDATOR" stop -c "$1" > /dev/null || true
    else
        "$CONSOLIDATOR" stop --vms -c "$1" > /dev/null || true
    fi
    for _ in $(seq 1 100); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.2
    done
    kill -0 "$DAEMON_PID" 2>/dev/null && fail "daemon did not stop"
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=
    check_sanitizers
}

# check_sanitizers: under make check-asan, any report in the daemon's log
# fails the test.
check_sanitizers() {
    if [ -n "${DAEMON_LOG:-}" ] &&
       grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$DAEMON_LOG"; then
        grep -m5 -E 'ERROR: |runtime error:|SUMMARY' "$DAEMON_LOG"
        fail "sanitizer report in $DAEMON_LOG"
    fi
}

need_root() {
    [ "$(id -u)" = 0 ] || skip "needs root (network namespaces for emulated hosts)"
    command -v ip > /dev/null || skip "needs ip (iproute2)"
}

# kill_instance STATE_DIR INSTANCE: whatever a test left behind, gone: the
# daemon's QEMUs outlive it (they are not its children), so a failed test
# must kill them by their pidfiles and remove the instance's namespaces.
kill_instance() {
    for f in "$1"/run/*/*/qemu.pid; do
        [ -f "$f" ] && kill -9 "$(cut -d' ' -f1 "$f")" 2>/dev/null
    done
    "$PP_TOP/scripts/pp-net" down "$2" 2>/dev/null || true
}

# qemu_count STATE_DIR VM: how many QEMU processes of VM run now.
qemu_count() {
    n=0
    for f in "$1"/run/"$2"/*/qemu.pid; do
        [ -f "$f" ] || continue
        pid=$(cut -d' ' -f1 "$f")
        start=$(cut -d' ' -f2 "$f")
        [ -r "/proc/$pid/stat" ] || continue
        # fields after "pid (comm) ": 1 state (Z: a zombie nobody reaped
        # yet, gone all the same), 20 start time
        stat=$(sed 's/.*) //' "/proc/$pid/stat")
        [ "$(echo "$stat" | cut -d' ' -f1)" != Z ] &&
            [ "$(echo "$stat" | cut -d' ' -f20)" = "$start" ] && n=$((n + 1))
    done
    echo $n
}

# ---- emulated libvirt hosts (scripts/pp-libvirt) ----
need_libvirtd() {
    command -v libvirtd > /dev/null || [ -x /usr/sbin/libvirtd ] ||
        skip "needs libvirtd (libvirt-daemon; scripts/install-deps installs it)"
    command -v virsh > /dev/null || skip "needs virsh (libvirt-clients)"
}

# lv_hosts INSTANCE CONFIG HOST...: start one libvirtd per HOST (host i
# gets CPU i; links shaped at $LV_RATE, default 1gbit) and append their
# [host] sections to CONFIG.
lv_hosts() {
    inst=$1 cfgf=$2; shift 2
    "$PP_TOP/scripts/pp-libvirt" up "$inst" "${LV_RATE:-1gbit}" "$@" ||
        fail "emulated libvirt hosts did not start"
    i=0
    for h in "$@"; do
        cat >> "$cfgf" <<END
[host $h]
uri = $("$PP_TOP/scripts/pp-libvirt" uri "$inst" "$h")
peer_uri = $("$PP_TOP/scripts/pp-libvirt" peer-uri "$inst" "$h")
migration_address = $("$PP_TOP/scripts/pp-libvirt" addr "$inst" "$h")
cpus = $i

END
        i=$((i + 1))
    done
}

# lv_define DIR NAME HOST_URI CPUS WORKLOAD MEMORY [pp-domxml options]:
# define and start a domain of our guest image (serial log DIR/NAME.serial).
lv_define() {
    "$PP_BUILD/bin/pp-domxml" --name "$2" --memory "$6" \
        --qemu "$PP_BUILD/qemu/qemu-system-x86_64" \
        --kernel "$PP_BUILD/guest/vmlinuz" --initrd "$PP_BUILD/guest/initrd.img" \
        --accel "$PP_ACCEL" --workload "$5" --cpus "$4" \
        --serial-log "$1/$2.serial" \
        --firmware "/usr/share/seabios;/usr/share/qemu;/usr/lib/ipxe/qemu" \
        --global migration.x-postcopy-window=64 "${@:7}" > "$1/$2.xml" ||
        fail "pp-domxml failed for $2"
    virsh -q -c "$3" define "$1/$2.xml" > /dev/null || fail "cannot define $2"
    virsh -q -c "$3" start "$2" > /dev/null || fail "cannot start $2"
}

# ---- migration jobs of the daemon whose configuration is $cfg ----
job_state() { # JOB: its phase now
    st=$("$CONSOLIDATOR" jobs -c "$cfg" | awk -v id="$1" '$1 == id { print $7 }')
    if [ -z "$st" ]; then
        # Not a job of this run: one a restarted daemon settled at start
        # (finished while it was away) is only in the history.
        st=$("$CONSOLIDATOR" history -c "$cfg" --since=0 |
             grep "move-phase .* job $1 " | tail -n1 |
             sed "s/.* job $1 [^:]*: \([a-z]*\).*/\1/")
    fi
    echo "$st"
}
job_id() { tr -d ' \n' | sed 's/.*"id":\([0-9]*\).*/\1/'; } # from --json
wait_phase() { # JOB STATE: wait (up to 15 s) for the job to reach STATE
    for _ in $(seq 1 300); do
        [ "$(job_state "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    "$CONSOLIDATOR" jobs -c "$cfg"
    fail "job $1 never reached $2"
}
wait_done() { # JOB [SECONDS]: wait (up to 60 s) for it to end, and end done
    for _ in $(seq 1 $((${2:-60} * 5))); do
        case $(job_state "$1") in
        done) return 0 ;;
        failed|broken|cancelled) break ;;
        esac
        sleep 0.2
    done
    "$CONSOLIDATOR" jobs -c "$cfg"
    fail "job $1 did not end done"
}
