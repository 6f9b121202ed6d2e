#!/bin/bash
# make install into a DESTDIR: the programs, the helpers in libexec, the
# man page and a systemd unit whose ExecStart names the installed
# binary and which stops the daemon alone (KillMode=process: the VMs
# outlive it); the installed consolidator runs.
. "$(dirname "$0")/lib.sh"
dest=$PP_BUILD/tests/run/02/dest
rm -rf "$dest"; mkdir -p "$dest"
b=${PP_BUILD#"$PP_TOP"/}
unset MAKEFLAGS MFLAGS MAKELEVEL
make -s -C "$PP_TOP" install B="$b" DESTDIR="$dest" PREFIX=/usr ||
    fail "make install failed"
for f in bin/consolidator bin/ppmig bin/pp-domxml libexec/postpack/pp-net \
         libexec/postpack/pp-libvirt share/man/man1/consolidator.1 \
         lib/systemd/system/postpack@.service share/doc/postpack/consolidator.md; do
    [ -e "$dest/usr/$f" ] || fail "make install did not install /usr/$f"
done
for f in bin/consolidator libexec/postpack/pp-net libexec/postpack/pp-libvirt; do
    [ -x "$dest/usr/$f" ] || fail "/usr/$f is not executable"
done
unit=$dest/usr/lib/systemd/system/postpack@.service
grep -qx 'ExecStart=/usr/bin/consolidator run -c /etc/postpack/%i.ini' "$unit" ||
    fail "the unit does not start the installed binary: $(grep ExecStart "$unit")"
grep -qx 'KillMode=process' "$unit" || fail "the unit would kill the VMs with the daemon"
grep -q "@BINDIR@" "$unit" && fail "unfilled placeholder in the unit"
if command -v systemd-analyze > /dev/null; then
    # It cannot see the DESTDIR's binary or man page; anything else is ours.
    systemd-analyze verify "$unit" 2>&1 | grep -v "is not executable\|'man " | grep . &&
        fail "systemd-analyze finds problems in the unit"
fi
"$dest/usr/bin/consolidator" --help | grep -q "consolidation manager" ||
    fail "the installed consolidator does not run"
echo "all good"
