#!/bin/sh
# Generated from tests/qtest-wrapper.sh by make: runs postpack's QEMU for
# upstream's qtests.  Drops '-accel kvm...' unless KVM is the accelerator
# in use (the tests pick KVM whenever /dev/kvm opens, even where it cannot
# run a guest) and adds the firmware directories.
accel=@ACCEL@
first=yes
pending=no
for a do
    if [ $first = yes ]; then set --; first=no; fi
    if [ $pending = yes ]; then
        pending=no
        case $a in
        kvm*) [ "$accel" = kvm ] || continue ;;
        esac
        set -- "$@" -accel "$a"
        continue
    fi
    if [ "$a" = -accel ]; then pending=yes; continue; fi
    set -- "$@" "$a"
done
fw=
for d in @FIRMWARE@; do fw="$fw -L $d"; done
# shellcheck disable=SC2086
exec @QEMU@ $fw "$@"
