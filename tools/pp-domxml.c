/*
 * pp-domxml: a libvirt domain for postpack's guest image, on stdout.
 *
 * Tests and demos that run on emulated libvirt hosts (scripts/pp-libvirt)
 * define their VMs with it: our QEMU build as the emulator, the guest
 * kernel and initrd booted directly with the workload on the kernel
 * command line (the same pp_guest_cmdline() the local driver uses), the
 * serial console appended to a file, the firmware directories and our
 * QEMU's migration defaults as -global properties (settable without
 * libvirt knowing them), and the postpack metadata element that a
 * libvirt driver with vm_metadata = true looks for.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "guestlog.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PP_XMLNS "https://postpack.dev/xmlns/libvirt/1"

static char *opt_name, *opt_qemu, *opt_kernel, *opt_initrd, *opt_workload;
static char *opt_accel = "tcg", *opt_cpus, *opt_serial, *opt_firmware;
static char **opt_globals;
static gint64 opt_memory = 512, opt_fill;
static int opt_vcpus = 1;
static gboolean opt_no_metadata;

static GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &opt_name, "domain name", "NAME" },
    { "memory", 0, 0, G_OPTION_ARG_INT64, &opt_memory, "MiB (512)", "MIB" },
    { "vcpus", 0, 0, G_OPTION_ARG_INT, &opt_vcpus, "vCPUs (1)", "N" },
    { "qemu", 0, 0, G_OPTION_ARG_FILENAME, &opt_qemu, "emulator", "PATH" },
    { "kernel", 0, 0, G_OPTION_ARG_FILENAME, &opt_kernel, "guest kernel",
      "PATH" },
    { "initrd", 0, 0, G_OPTION_ARG_FILENAME, &opt_initrd, "guest initrd",
      "PATH" },
    { "workload", 0, 0, G_OPTION_ARG_STRING, &opt_workload,
      "guest program and options", "CMD" },
    { "fill", 0, 0, G_OPTION_ARG_INT64, &opt_fill,
      "MiB filled at boot", "MIB" },
    { "accel", 0, 0, G_OPTION_ARG_STRING, &opt_accel,
      "tcg (domain type qemu) or kvm", "ACCEL" },
    { "cpus", 0, 0, G_OPTION_ARG_STRING, &opt_cpus,
      "host CPU list to pin to", "LIST" },
    { "serial-log", 0, 0, G_OPTION_ARG_FILENAME, &opt_serial,
      "append the serial console to this file", "PATH" },
    { "firmware", 0, 0, G_OPTION_ARG_STRING, &opt_firmware,
      "';'-separated -L directories", "DIRS" },
    { "global", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_globals,
      "a -global property, e.g. migration.x-postcopy-window=64 "
      "(repeatable)", "PROP=VALUE" },
    { "no-metadata", 0, 0, G_OPTION_ARG_NONE, &opt_no_metadata,
      "leave out the postpack metadata element", NULL },
    { NULL }
};

static void G_GNUC_NORETURN die(const char *msg)
{
    fprintf(stderr, "pp-domxml: %s\n", msg);
    exit(2);
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- print a libvirt domain for postpack's guest image");
    g_autoptr(GError) err = NULL;
    g_autofree char *cmdline = NULL;
    bool kvm;

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(ctx,
        "Example:\n  pp-domxml --name vm0 --qemu build/qemu/qemu-system-x86_64 "
        "--kernel build/guest/vmlinuz \\\n    --initrd build/guest/initrd.img "
        "--workload 'memverify --mib=64' --serial-log /tmp/vm0.log\n");
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        die(err->message);
    }
    if (!opt_name || !opt_qemu || !opt_kernel) {
        die("--name, --qemu and --kernel are required (see --help)");
    }
    if (strcmp(opt_accel, "tcg") != 0 && strcmp(opt_accel, "kvm") != 0) {
        die("--accel must be tcg or kvm");
    }
    if (opt_memory < 64 || opt_vcpus < 1 || opt_fill < 0 ||
        opt_fill >= opt_memory) {
        die("--memory must be at least 64, --vcpus at least 1, --fill "
            "below --memory");
    }
    kvm = strcmp(opt_accel, "kvm") == 0;
    cmdline = pp_guest_cmdline(opt_workload, (guint64)opt_fill, NULL, &err);
    if (!cmdline) {
        die(err->message);
    }
#define X(s) g_markup_escape_text(s, -1)
    g_autofree char *name = X(opt_name), *qemu = X(opt_qemu);
    g_autofree char *kernel = X(opt_kernel), *cmd = X(cmdline);
    printf("<domain type='%s' "
           "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n",
           kvm ? "kvm" : "qemu");
    printf("  <name>%s</name>\n", name);
    if (!opt_no_metadata) {
        printf("  <metadata>\n    <postpack:vm xmlns:postpack='%s'/>\n"
               "  </metadata>\n", PP_XMLNS);
    }
    printf("  <memory unit='MiB'>%" G_GINT64_FORMAT "</memory>\n",
           opt_memory);
    if (opt_cpus) {
        g_autofree char *cpus = X(opt_cpus);
        printf("  <vcpu placement='static' cpuset='%s'>%d</vcpu>\n", cpus,
               opt_vcpus);
    } else {
        printf("  <vcpu placement='static'>%d</vcpu>\n", opt_vcpus);
    }
    printf("  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n"
           "    <kernel>%s</kernel>\n", kernel);
    if (opt_initrd) {
        g_autofree char *initrd = X(opt_initrd);
        printf("    <initrd>%s</initrd>\n", initrd);
    }
    printf("    <cmdline>%s</cmdline>\n  </os>\n", cmd);
    /* Without <acpi/> libvirt 9.0 passes -no-acpi, which QEMU 10 refuses. */
    printf("  <features>\n    <acpi/>\n  </features>\n");
    printf("  <cpu mode='%s'%s\n", kvm ? "host-passthrough" : "custom",
           kvm ? "/>" : " match='exact'>\n    <model fallback='allow'>"
           "qemu64</model>\n  </cpu>");
    printf("  <on_poweroff>destroy</on_poweroff>\n"
           "  <on_reboot>destroy</on_reboot>\n"
           "  <on_crash>destroy</on_crash>\n");
    printf("  <devices>\n    <emulator>%s</emulator>\n", qemu);
    if (opt_serial) {
        g_autofree char *serial = X(opt_serial);
        /* Appended: source and destination write one file in turn. */
        printf("    <serial type='file'>\n      <source path='%s' "
               "append='on'/>\n      <target port='0'/>\n    </serial>\n",
               serial);
    }
    printf("    <memballoon model='none'/>\n  </devices>\n");
    printf("  <qemu:commandline>\n");
    if (opt_firmware) {
        g_auto(GStrv) dirs = g_strsplit(opt_firmware, ";", -1);
        for (char **d = dirs; *d; d++) {
            g_autofree char *dir = X(*d);
            if (**d) {
                printf("    <qemu:arg value='-L'/>\n"
                       "    <qemu:arg value='%s'/>\n", dir);
            }
        }
    }
    for (char **g = opt_globals; g && *g; g++) {
        g_autofree char *prop = X(*g);
        printf("    <qemu:arg value='-global'/>\n"
               "    <qemu:arg value='%s'/>\n", prop);
    }
    printf("  </qemu:commandline>\n</domain>\n");
#undef X
    return 0;
}
