#!/bin/bash
# scripts/experiment-5.1 (make demo), experiment-5.2, experiment-5.3 and
# experiments (make experiments) refuse bad options with a clear
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
# experiment-5.2, -5.3 and experiments (make experiments) likewise
X() { # SCRIPT WANT OPTION...
    local script=$1 want=$2 msg
    shift 2
    msg=$("$PP_TOP/scripts/$script" --build "$PP_BUILD" "$@" 2>&1) && fail "$script $* succeeded"
    echo "$msg" | grep -q "$want" || fail "$script $*: unclear message: $msg"
}
X experiment-5.2 "unknown run 'fast'" --out "$out" --runs fast
X experiment-5.2 "job-s must be whole seconds" --out "$out" --job-s 2m
X experiment-5.2 "job-s must be at least 10" --out "$out" --job-s 5
X experiment-5.2 "units must be at least 1" --out "$out" --units 0
X experiment-5.2 "host-work must be vm or split" --out "$out" --host-work x
X experiment-5.2 "unknown option" --out "$out" --bogus
X experiment-5.3 "unknown run 'fast'" --out "$out" --runs fast
X experiment-5.3 "good must not exceed --tolerable" --out "$out" --good 5 --tolerable 4
X experiment-5.3 "think must be a number" --out "$out" --think -1
X experiment-5.3 "duration must hold VM1's 7 steps" --out "$out" --duration 30 --step 10
X experiment-5.3 "unknown option" --out "$out" --bogus
X experiments "unknown experiment '5.4'" --only 5.4
X experiments "host-work must be vm or split" --host-work x
echo "all good"
