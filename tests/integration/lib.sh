# Helpers for integration tests (sourced).  Tests run from the project
# root with PP_BUILD (build directory) and PP_ACCEL set by tests/run-tests.
set -u
PP_BUILD=$(cd "${PP_BUILD:-build}" && pwd)
PP_TOP=${PP_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PP_ACCEL=${PP_ACCEL:-tcg}
PPMIG=$PP_BUILD/bin/ppmig

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

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
CONSOLIDATOR=$PP_BUILD/bin/consolidator

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
# its control socket answers.  Sets DAEMON_PID.
start_daemon() {
    "$CONSOLIDATOR" run -c "$1" > "$2" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 300); do
        "$CONSOLIDATOR" status -c "$1" > /dev/null 2>&1 && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$2"; fail "daemon exited"; }
        sleep 0.2
    done
    cat "$2"
    fail "daemon did not open its control socket"
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
