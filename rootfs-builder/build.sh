#!/usr/bin/env bash
# Build the guest initramfs: the static kata-agent as /init and the few
# directories and device nodes the kernel and the agent need before devtmpfs
# is mounted.  Nothing else: containers bring their own root file systems.
#
# Reproducible: the same agent binary gives the same bytes (sorted entries,
# fixed owners, mtimes and inode numbers, gzip without a timestamp).
#
# usage: rootfs-builder/build.sh AGENT_BINARY OUTPUT.cpio.gz
set -euo pipefail

agent=${1:?usage: build.sh AGENT_BINARY OUTPUT.cpio.gz}
out=${2:?usage: build.sh AGENT_BINARY OUTPUT.cpio.gz}
max_bytes=$((2 * 1024 * 1024))	# goal: at most 2 MiB compressed

die() { echo "rootfs-builder: $*" >&2; exit 1; }
[ -x "$agent" ] || die "$agent: no such executable (run make first)"
file -L "$agent" | grep -q 'statically linked' ||
	die "$agent is not statically linked: the initramfs has no libraries"
for tool in cpio gzip strip; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install cpio gzip binutils)"
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 022
mkdir -p "$stage"/{dev,proc,sys,run,tmp,etc}
chmod 1777 "$stage/tmp"
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3
# Debug info is for the build tree, not for every VM's memory.
strip --strip-all -o "$stage/init" "$agent"
chmod 0755 "$stage/init"
printf 'root:x:0:0:root:/:/init\n' > "$stage/etc/passwd"
printf 'root:x:0:\n' > "$stage/etc/group"

# Fixed metadata, sorted names.
find "$stage" -exec touch -h -d @0 {} +
tmp_out="$out.tmp.$$"
(cd "$stage" && find . -mindepth 1 -print | LC_ALL=C sort |
	cpio --quiet -o -H newc --reproducible -R 0:0) | gzip -9 -n > "$tmp_out"
mv "$tmp_out" "$out"

size=$(stat -c %s "$out")
echo "rootfs-builder: $out: $size bytes ($(sha256sum "$out" | cut -c1-16))"
[ "$size" -le "$max_bytes" ] || echo "rootfs-builder: warning: larger than the 2 MiB goal" >&2
