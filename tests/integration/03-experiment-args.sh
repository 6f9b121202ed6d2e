#!/bin/bash
# scripts/experiment-5.1 (make demo) refuses bad options with a clear
# message, for either driver, before it starts anything: a bad step, a
# bad driver, an unknown run, a bad host-work layout.  (A shell slip that
# makes it exit silently under set -e, as an earlier version did for the
# local driver, fails here.)
. "$(dirname "$0")/lib.sh"
need_root
command -v gnuplot > /dev/null || skip "needs gnuplot (scripts/install-deps)"
out=$PP_BUILD/tests/run/03
rm -rf "$out"
E() { "$PP_TOP/scripts/experiment-5.1" --build "$PP_BUILD" --out "$out" "$@" 2>&1; }
expect() { # WANT OPTION...: fails with WANT in its message
    want=$1; shift
    msg=$(E "$@") && fail "experiment-5.1 $* succeeded"
    echo "$msg" | grep -q "$want" || fail "experiment-5.1 $*: unclear message: $msg"
}
expect "step must be at least 15" --step 5
expect "step must be whole seconds" --step 2x
expect "driver must be local or libvirt" --driver xen
for drv in local libvirt; do
    expect "unknown run 'nope'" --driver "$drv" --runs nope
done
expect "host-work must be vm or split" --host-work cores
expect "host-work split needs the local driver" --driver libvirt --host-work split
expect "unknown option" --bogus
echo "all good"
