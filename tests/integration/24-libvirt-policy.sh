#!/bin/bash
# integration/21's scenario (the paper's experiment 5.1, shortened: a
# policy-driven spread when pm0 overloads, then a pack) with the libvirt
# driver: the two VMs are libvirt domains on two emulated libvirt hosts,
# sampled through the bulk stats API and moved with libvirt's post-copy.
exec env PP_TEST_DRIVER=libvirt bash "$(dirname "$0")/21-consolidator-policy.sh"
