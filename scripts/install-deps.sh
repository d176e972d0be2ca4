#!/usr/bin/env bash
# Install what kata-run needs to build and test, from Debian's packages only.
# Idempotent: a second run installs nothing.  Needs root.
set -euo pipefail

PKGS=(
	# build
	build-essential pkg-config linux-libc-dev
	libprotobuf-c-dev protobuf-c-compiler nanopb libnanopb-dev
	libseccomp-dev libjson-c-dev libvirt-dev
	# fuzzing (libFuzzer + sanitizers come with clang)
	clang libclang-rt-14-dev
	# tests: busybox images, reference runtimes, containerd (the shim), helpers
	busybox-static runc crun containerd python3 util-linux procps iproute2 file cpio binutils
	# the VM: QEMU (ships virtiofsd) driven by libvirt (the embedded driver
	# needs the daemon packages, not a running daemon); the guest kernel
	# build installs its own deps (guest-kernel-config/build.sh)
	qemu-system-x86 libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
