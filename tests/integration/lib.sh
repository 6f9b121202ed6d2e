# Helpers for integration tests (sourced).  Tests run from the project
# root with PP_BUILD (build directory) and PP_ACCEL set by tests/run-tests.
set -u
PP_BUILD=${PP_BUILD:-build}
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
