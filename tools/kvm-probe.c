/*
 * kvm-probe: can /dev/kvm run an ordinary guest here?
 *
 * Creates a VM with one vCPU in real mode whose only instruction is HLT
 * and runs it.  Exit status 0 when the vCPU exits with KVM_EXIT_HLT, 1
 * otherwise (with the reason on stderr).  Some hosts expose a /dev/kvm
 * that opens fine but cannot run such a guest; configure uses this probe
 * to pick TCG there.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int fail(const char *what)
{
    fprintf(stderr, "kvm-probe: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        return fail("open /dev/kvm");
    }
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        return fail("KVM_GET_API_VERSION");
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        return fail("KVM_CREATE_VM");
    }
    unsigned char *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return fail("mmap");
    }
    mem[0] = 0xf4; /* hlt */
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0x1000, .memory_size = 0x1000,
        .userspace_addr = (unsigned long)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        return fail("KVM_SET_USER_MEMORY_REGION");
    }
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) {
        return fail("KVM_CREATE_VCPU");
    }
    int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0) {
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    }
    struct kvm_run *run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
                               MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        return fail("mmap vcpu");
    }
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
        return fail("KVM_GET_SREGS");
    }
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
        return fail("KVM_SET_SREGS");
    }
    struct kvm_regs regs = { .rip = 0x1000, .rflags = 0x2 };
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
        return fail("KVM_SET_REGS");
    }
    alarm(5);
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
        return fail("KVM_RUN");
    }
    if (run->exit_reason != KVM_EXIT_HLT) {
        fprintf(stderr, "kvm-probe: guest exited with reason %u, not HLT\n",
                run->exit_reason);
        return 1;
    }
    return 0;
}
