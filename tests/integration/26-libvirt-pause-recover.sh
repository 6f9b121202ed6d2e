#!/bin/bash
# integration/25's scenario (post-copy paused on request, recovered,
# paused again across a daemon SIGKILL and recovered by the next daemon)
# through the libvirt driver: virDomainAbortJobFlags(POSTCOPY) and the
# migration call again with VIR_MIGRATE_POSTCOPY_RESUME.
exec env PP_TEST_DRIVER=libvirt bash "$(dirname "$0")/25-postcopy-pause-recover.sh"
