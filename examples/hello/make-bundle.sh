#!/usr/bin/env bash
# Make the example OCI bundle in DIR: DIR/config.json (a copy of the one
# next to this script) and DIR/rootfs with Debian's static busybox.
set -euo pipefail
dir=${1:?usage: make-bundle.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}
file -L "$busybox" 2>/dev/null | grep -q "statically linked" || {
	echo "make-bundle: $busybox is not a static binary (apt-get install busybox-static)" >&2
	exit 1
}
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc"
for d in proc sys dev tmp; do mkdir -p "$dir/rootfs/$d"; done
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in sh echo cat ls id hostname uname sleep true false env ps; do
	ln -sf busybox "$dir/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$dir/rootfs/etc/group"
cp "$here/config.json" "$dir/config.json"
echo "$dir"
