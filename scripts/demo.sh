#!/usr/bin/env bash
# The main job on the default example: build the guest (kernel, cached
# outside the tree, and initramfs), make the example bundle (examples/hello,
# busybox rootfs) and run it with kata-run in its own VM:
#
#   build/kata-run build/hello
#
# On a host without usable KVM (these machines: see docs/architecture.md)
# the VM runs under QEMU's TCG: slower, same isolation.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/kata-run ] || make -j"$(nproc)"
scripts/libvirt-setup.sh --no-daemons >/dev/null
make -s guest-kernel	# first time on a machine: about 10 minutes on 2 cores
make -s initramfs
rm -rf build/hello
examples/hello/make-bundle.sh build/hello >/dev/null
set +e
build/kata-run build/hello
status=$?
echo "demo: container exited with status $status"
exit $status
