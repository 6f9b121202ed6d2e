# postpack top-level Makefile (GNU make).  `make help` lists the targets.
# The two set-up commands of the README (make check, make demo) install
# what they need: dependencies (scripts/install-deps, as root or via sudo),
# configuration, the QEMU source, the guest image.

SHELL := /bin/bash
.DEFAULT_GOAL := all
Q := $(if $(V),,@)
TOP := $(CURDIR)
B := build

-include config.mak

ifeq ($(shell id -u),0)
SUDO :=
else
SUDO := sudo
endif

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wno-unused-parameter -Wmissing-prototypes -Wshadow
PKGS := glib-2.0 json-c sqlite3 libvirt libvirt-qemu libvirt-glib-1.0 \
        libsoup-3.0
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(CFLAGS) $(WARN) $(EXTRA_CFLAGS) -Iconsolidator/lib -Iconsolidator/policy -Iconsolidator/daemon -Iconsolidator/driver -Iconsolidator/sim $(PKG_CFLAGS) -MMD -MP

QEMU_SRC := $(if $(QEMU_SOURCE),$(QEMU_SOURCE),$(B)/qemu-src)
QEMU_BUILD := $(B)/qemu
QEMU_BIN := $(QEMU_BUILD)/qemu-system-x86_64
UPSTREAM_SRC := $(B)/qemu-upstream-src
UPSTREAM_BUILD := $(B)/qemu-upstream
QEMU_FLAGS = $(shell sed -e 's/\#.*//' qemu/config)
FIRMWARE := /usr/share/seabios /usr/share/qemu /usr/lib/ipxe/qemu

# ---------------------------------------------------------------- set-up
# Dependencies: re-run install-deps when it changes (idempotent anyway).
$(B)/.deps-stamp: scripts/install-deps
	$(Q)mkdir -p $(B)
	$(Q)$(SUDO) scripts/install-deps
	$(Q)touch $@

deps: $(B)/.deps-stamp

config.mak: configure | $(B)/.deps-stamp
	$(Q)./configure $(CONFIGURE_ARGS)

# ------------------------------------------------------------ C programs
LIB_SRCS := consolidator/lib/pp-error.c consolidator/lib/launcher.c \
            consolidator/policy/policy.c consolidator/policy/threshold.c \
            consolidator/policy/none.c consolidator/policy/pabfd.c \
            consolidator/policy/stats.c consolidator/policy/migmodel.c \
            consolidator/sim/trace.c consolidator/sim/sim.c \
            consolidator/lib/qmp.c consolidator/lib/guestlog.c \
            consolidator/lib/store.c consolidator/lib/procstat.c \
            consolidator/lib/unixsock.c consolidator/lib/migqmp.c \
            consolidator/lib/ppjson.c \
            consolidator/daemon/config.c consolidator/daemon/daemon.c \
            consolidator/daemon/job.c consolidator/daemon/control.c \
            consolidator/daemon/metrics.c consolidator/daemon/power.c \
            consolidator/driver/driver.c consolidator/driver/local.c \
            consolidator/driver/libvirt.c
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
LIB := $(B)/libpostpack.a

$(B)/obj/%.o: %.c config.mak
	$(Q)mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

# Tools: one C file each under tools/, linked with the library.
$(B)/bin/ppmig $(B)/bin/pp-domxml: $(B)/bin/%: $(B)/obj/tools/%.o $(LIB)
	$(Q)mkdir -p $(dir $@)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(PKG_LIBS) -lm

$(B)/bin/kvm-probe: tools/kvm-probe.c
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $<

$(B)/obj/consolidator/driver/local.o: ALL_CFLAGS += -DPP_NET_HELPER='"$(TOP)/scripts/pp-net"'

CLI_OBJS := $(B)/obj/consolidator/cli/main.o $(B)/obj/consolidator/cli/simulate.o
$(B)/bin/consolidator: $(CLI_OBJS) $(LIB)
	$(Q)mkdir -p $(dir $@)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(PKG_LIBS) -lm

PROGRAMS := $(B)/bin/ppmig $(B)/bin/consolidator $(B)/bin/pp-domxml

# cmocka unit tests, one binary per tests/unit/test-*.c.
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)

$(B)/tests/unit/%: $(B)/obj/tests/unit/%.o $(LIB)
	$(Q)mkdir -p $(dir $@)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(PKG_LIBS) $$(pkg-config --libs cmocka) -lm

$(B)/obj/tests/unit/%.o: ALL_CFLAGS += -DTEST_DATA='"$(TOP)/tests/data"' \
    -DPLANETLAB_DAY='"$(TOP)/$(PLANETLAB_DAY)"' $$(pkg-config --cflags cmocka)

# The PlanetLab day of the literature (sim-reference.md), for the
# simulator's tests and benchmarks.
PLANETLAB_DAY := $(B)/traces/planetlab/20110303
$(PLANETLAB_DAY)/.stamp: tests/data/planetlab-20110303.tar.xz
	$(Q)mkdir -p $(B)/traces/planetlab
	$(Q)tar xJf $< -C $(B)/traces/planetlab && touch $@

unit-tests: $(UNIT_BINS) $(PLANETLAB_DAY)/.stamp

all: $(PROGRAMS)

# Fuzzing: libFuzzer harnesses (tests/fuzz/fuzz-*.c) built with clang,
# ASan and UBSan against their own build of the library.
FUZZ_CC := clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 $(FUZZ_SAN) $(WARN) \
              -Iconsolidator/lib -Iconsolidator/policy -Iconsolidator/daemon \
              -Iconsolidator/driver -Iconsolidator/sim $(PKG_CFLAGS) -MMD -MP
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS := $(FUZZ_NAMES:%=$(B)/fuzz/fuzz-%)
FUZZ_LIB := $(B)/fuzz/libpostpack.a

$(B)/fuzz/obj/%.o: %.c config.mak
	$(Q)mkdir -p $(dir $@)
	$(if $(Q),@echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
	    -DPP_NET_HELPER='"$(TOP)/scripts/pp-net"' -c -o $@ $<

$(FUZZ_LIB): $(LIB_SRCS:%.c=$(B)/fuzz/obj/%.o)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/fuzz/fuzz-%: $(B)/fuzz/obj/tests/fuzz/fuzz-%.o $(FUZZ_LIB)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lm

fuzzers: $(FUZZ_BINS)

# make fuzz [FUZZ_SECONDS=60 | FUZZ_RUNS=N] [FUZZ=qmp,control,...]: each
# harness for that long (or that many executions), corpora kept in
# $(B)/fuzz/corpus, a table of executions.
FUZZ_SECONDS ?= 60
fuzz: fuzzers
	$(Q)tests/fuzz/run-fuzz --build $(B) --seconds $(FUZZ_SECONDS) \
	    $(if $(FUZZ_RUNS),--runs $(FUZZ_RUNS)) $(if $(FUZZ),--only $(FUZZ))

# The sanitizer lane: the library, programs and unit tests built again
# with ASan and UBSan (gcc) in $(B)/asan, the unit tests and the
# consolidator's integration tests run against them.
ASAN_B := $(B)/asan
ASAN_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer
$(ASAN_B)/obj/%.o: %.c config.mak
	$(Q)mkdir -p $(dir $@)
	$(if $(Q),@echo "  ASANCC  $<")
	$(Q)$(CC) $(ALL_CFLAGS) -O1 $(ASAN_SAN) -DTEST_DATA='"$(TOP)/tests/data"' \
	    -DPLANETLAB_DAY='"$(TOP)/$(PLANETLAB_DAY)"' \
	    -DPP_NET_HELPER='"$(TOP)/scripts/pp-net"' \
	    $$(pkg-config --cflags cmocka) -c -o $@ $<

$(ASAN_B)/libpostpack.a: $(LIB_SRCS:%.c=$(ASAN_B)/obj/%.o)
	$(Q)rm -f $@ && ar rcs $@ $^

$(ASAN_B)/bin/consolidator: $(ASAN_B)/obj/consolidator/cli/main.o $(ASAN_B)/obj/consolidator/cli/simulate.o $(ASAN_B)/libpostpack.a
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ASAN_SAN) -o $@ $^ $(PKG_LIBS) -lm

$(ASAN_B)/tests/unit/%: $(ASAN_B)/obj/tests/unit/%.o $(ASAN_B)/libpostpack.a
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ASAN_SAN) -o $@ $^ $(PKG_LIBS) $$(pkg-config --libs cmocka) -lm

check-asan: all qemu guest $(B)/accel $(ASAN_B)/bin/consolidator $(PLANETLAB_DAY)/.stamp \
            $(UNIT_SRCS:tests/unit/%.c=$(ASAN_B)/tests/unit/%)
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    PP_UNIT_DIR=$(ASAN_B)/tests/unit \
	    PP_CONSOLIDATOR=$(TOP)/$(ASAN_B)/bin/consolidator \
	    tests/run-tests --build $(B) \
	    --only '$(if $(CHECK_ONLY),$(CHECK_ONLY),unit/*,integration/2[0-9]-*,integration/30-*)'

# ----------------------------------------------------------------- guest
GUEST_PROGS := memverify memtouch cpuload fixedwork bankpage
GUEST_BINS := $(GUEST_PROGS:%=$(B)/guest/bin/%)
GUEST_CFLAGS := -std=gnu11 -O2 -static -Wall -Wextra -Wno-unused-parameter

$(B)/guest/bin/%: tools/guest/%.c tools/guest/ppguest.c tools/guest/ppguest.h
	$(Q)mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $@ (static guest program)")
	$(Q)$(CC) $(GUEST_CFLAGS) -o $@ $< tools/guest/ppguest.c

$(B)/guest/initrd.img: $(GUEST_BINS) tools/guest/init tools/guest/mkimage | $(B)/.deps-stamp
	$(Q)tools/guest/mkimage $(B)/guest $(B)/guest/bin

guest: $(B)/guest/initrd.img

# ------------------------------------------------------------------ QEMU
# The source tree is a git repository: one commit for Debian's source,
# one per patch.  'prepare' is cheap when nothing changed.
define qemu_configure
	$(Q)mkdir -p $(2)
	$(Q)if [ ! -f $(2)/build.ninja ] || [ "$$(cat $(2)/.postpack-flags 2>/dev/null)" != "$(QEMU_FLAGS)" ]; then \
	    echo "  QEMU    configure $(2)"; \
	    (cd $(2) && $(TOP)/$(1)/configure --python=/usr/bin/python3 $(QEMU_FLAGS)) > $(2)/configure.log 2>&1 \
	        || { tail -20 $(2)/configure.log; echo "QEMU configure failed: see $(2)/configure.log"; exit 1; }; \
	    echo "$(QEMU_FLAGS)" > $(2)/.postpack-flags; \
	fi
endef

qemu-source: config.mak
ifeq ($(QEMU_SOURCE),)
	$(Q)scripts/qemu-source prepare $(QEMU_SRC)
endif

qemu: qemu-source
	$(call qemu_configure,$(QEMU_SRC),$(QEMU_BUILD))
	$(Q)echo "  QEMU    ninja $(QEMU_BUILD)"
	$(Q)ninja -C $(QEMU_BUILD) $(if $(V),,--quiet) qemu-system-x86_64 tests/qtest/migration-test \
	    tests/unit/test-io-channel-socket

qemu-upstream: config.mak
	$(Q)scripts/qemu-source prepare --no-patches $(UPSTREAM_SRC)
	$(call qemu_configure,$(UPSTREAM_SRC),$(UPSTREAM_BUILD))
	$(Q)echo "  QEMU    ninja $(UPSTREAM_BUILD) (upstream baseline)"
	$(Q)ninja -C $(UPSTREAM_BUILD) $(if $(V),,--quiet) qemu-system-x86_64

qemu-export:
	$(Q)scripts/qemu-source export $(QEMU_SRC)

# The accelerator actually used: configure's choice, or for 'auto' what the
# built QEMU can run here (it boots the guest with KVM, scripts/probe-accel).
$(B)/accel: config.mak scripts/probe-accel | qemu $(B)/guest/initrd.img
	$(Q)if [ "$(ACCEL)" = auto ]; then \
	    scripts/probe-accel $(QEMU_BIN) $(B)/guest/vmlinuz $(B)/guest/initrd.img \
	        $(FIRMWARE) > $@.tmp || { rm -f $@.tmp; exit 1; }; \
	    mv $@.tmp $@; else echo "$(ACCEL)" > $@; fi
	$(Q)echo "  ACCEL   $$(cat $@)"

# Upstream's migration-test runs QEMU through this wrapper: it drops
# '-accel kvm' (the test picks KVM whenever /dev/kvm opens) unless KVM is
# our accelerator, and adds the firmware directories.
$(B)/qtest-wrap/qemu-system-x86_64: tests/qtest-wrapper.sh $(B)/accel
	$(Q)mkdir -p $(dir $@)
	$(Q)sed -e "s|@QEMU@|$(TOP)/$(QEMU_BIN)|" -e "s|@ACCEL@|$$(cat $(B)/accel)|" \
	    -e "s|@FIRMWARE@|$(FIRMWARE)|" $< > $@ && chmod +x $@

# ----------------------------------------------------------------- tests
check: all unit-tests fuzzers qemu guest $(B)/accel $(B)/qtest-wrap/qemu-system-x86_64
	$(Q)tests/run-tests --build $(B) $(CHECK_ARGS)

check-full: all unit-tests fuzzers qemu guest $(B)/accel $(B)/qtest-wrap/qemu-system-x86_64
	$(Q)tests/run-tests --build $(B) --full $(CHECK_ARGS)

# ------------------------------------------------------------------ demo
# The paper's experiment 5.1 (pre-copy vs post-copy packing); STEP=S
# shortens VM1's load steps (default 60 s: about 23 minutes for 4 runs),
# RUNS=postcopy-filled,... picks runs, DRIVER=libvirt runs the VMs as
# libvirt domains on emulated libvirt hosts, HOST_WORK=split puts pm0's
# QEMU threads other than vCPUs on CPU 1.
demo: all qemu guest $(B)/accel
	$(Q)$(SUDO) scripts/experiment-5.1 --build $(B) $(if $(STEP),--step $(STEP)) \
	    $(if $(RUNS),--runs $(RUNS)) $(if $(DRIVER),--driver $(DRIVER)) \
	    $(if $(HOST_WORK),--host-work $(HOST_WORK))

# The paper's experiments 5.1 (both host-work layouts), 5.2 and 5.3, about
# 2 hours (SHORT=1: about 25 minutes); EXPERIMENTS=5.1,5.2,5.3 picks,
# HOST_WORK=split for 5.2 and 5.3.  Tables: build/experiments/summary.md.
experiments: all qemu guest $(B)/accel
	$(Q)$(SUDO) scripts/experiments --build $(B) $(if $(SHORT),--short) \
	    $(if $(EXPERIMENTS),--only $(EXPERIMENTS)) \
	    $(if $(HOST_WORK),--host-work $(HOST_WORK))

# Our post-copy vs upstream QEMU 10.0 (same Debian source, no series):
# REPS=N repetitions (default 5), WORKLOADS=..., LINKS=tbf,loopback,
# CONFIGS=... (default: every configuration, scripts/bench-postcopy -h).
bench-postcopy: all qemu qemu-upstream guest $(B)/accel
	$(Q)$(SUDO) scripts/bench-postcopy --build $(B) $(if $(REPS),--reps $(REPS)) \
	    $(if $(WORKLOADS),--workloads $(WORKLOADS)) $(if $(LINKS),--links $(LINKS)) \
	    $(if $(CONFIGS),--configs $(CONFIGS))

# The simulator against CloudSim's figures, and its scale (docs/benchmarks.md).
bench-sim: all $(PLANETLAB_DAY)/.stamp
	$(Q)scripts/bench-sim --build $(B) $(if $(ORDERS),--orders $(ORDERS))

# Huge pages after a post-copy move, with and without x-postcopy-collapse,
# against pre-copy: REPS=N (default 3).
bench-thp: all qemu guest $(B)/accel
	$(Q)scripts/bench-thp --build $(B) $(if $(REPS),--reps $(REPS))

bench: bench-postcopy

# One post-copy move of a memory-bound guest, with a report.
demo-migrate: all qemu guest $(B)/accel
	$(Q)scripts/demo --build $(B)

# --------------------------------------------------------------- install
# PREFIX (configure --prefix, default /usr/local) and DESTDIR as usual;
# SYSTEMDDIR is where the unit goes (PREFIX/lib/systemd/system).
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/postpack \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(SYSTEMDDIR) \
	    $(DESTDIR)$(PREFIX)/share/doc/postpack
	install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 scripts/pp-net scripts/pp-libvirt \
	    $(DESTDIR)$(PREFIX)/libexec/postpack/
	install -m 644 docs/consolidator.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' consolidator/systemd/postpack@.service.in \
	    > $(DESTDIR)$(SYSTEMDDIR)/postpack@.service
	chmod 644 $(DESTDIR)$(SYSTEMDDIR)/postpack@.service
	install -m 644 README.md docs/consolidator.md \
	    $(DESTDIR)$(PREFIX)/share/doc/postpack/

clean:
	rm -rf $(B)/obj $(B)/bin $(B)/guest $(LIB) $(B)/accel $(B)/qtest-wrap $(B)/tests \
	    $(B)/fuzz/obj $(FUZZ_BINS) $(FUZZ_LIB) $(ASAN_B)

distclean:
	rm -rf $(B) config.mak

help:
	@echo "postpack targets:"
	@echo "  all            C programs (default)"
	@echo "  deps           install build/test dependencies (scripts/install-deps)"
	@echo "  qemu           patched QEMU: $(QEMU_BIN), migration-test and the io unit test"
	@echo "  qemu-upstream  the same Debian source without our series (baseline)"
	@echo "  qemu-export    write $(QEMU_SRC)'s commits back to qemu/patches"
	@echo "  guest          guest kernel + initrd in $(B)/guest"
	@echo "  check          unit, integration and upstream migration tests"
	@echo "  check-full     check + all of upstream's migration-test (its --full set)"
	@echo "  check-asan     unit and consolidator tests built with ASan+UBSan"
	@echo "                 (CHECK_ONLY=GLOB picks tests)"
	@echo "  fuzz           each libFuzzer harness for FUZZ_SECONDS (60),"
	@echo "                 FUZZ=qmp,control,config,hotset,guestlog"
	@echo "  demo           the paper's experiment 5.1: packing with post-copy vs"
	@echo "                 pre-copy (STEP=60 seconds per load step, RUNS=...,"
	@echo "                 DRIVER=libvirt: on emulated libvirt hosts,"
	@echo "                 HOST_WORK=split: pm0's host work on CPU 1)"
	@echo "  experiments    the paper's experiments 5.1, 5.2 and 5.3 (about 2 h;"
	@echo "                 SHORT=1, EXPERIMENTS=5.2,..., HOST_WORK=split);"
	@echo "                 tables in build/experiments/summary.md"
	@echo "  demo-migrate   one post-copy move of a busy guest, with a report"
	@echo "  bench-postcopy our post-copy vs upstream's at its best, medians and"
	@echo "                 ratios (REPS=5, WORKLOADS=idle,contig,scatter,uniform,"
	@echo "                 LINKS=tbf,loopback, CONFIGS=...); bench is an alias"
	@echo "  bench-sim      the simulator vs CloudSim 3.0.3's figures; scale"
	@echo "  bench-thp      huge pages and guest rate after a post-copy move, with"
	@echo "                 and without the collapse, against pre-copy (REPS=3)"
	@echo "  install        programs, man page, systemd unit under PREFIX"
	@echo "                 (DESTDIR, SYSTEMDDIR)"
	@echo "  clean, distclean"
	@echo "Variables: V=1 (verbose), CHECK_ARGS (passed to tests/run-tests)"


.SECONDARY:
.PHONY: fuzzers fuzz check-asan unit-tests all deps qemu qemu-source qemu-upstream qemu-export guest check bench-thp \
        check-full demo experiments demo-migrate bench bench-postcopy bench-sim install clean \
        distclean help

-include $(shell find $(B)/obj $(B)/fuzz/obj $(ASAN_B)/obj -name '*.d' 2>/dev/null)
