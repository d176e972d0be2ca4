#!/usr/bin/env bash
# The guest initramfs (rootfs-builder/build.sh): reproducible bytes, the
# agent as a static /init, the nodes the kernel needs, the 2 MiB goal, and
# clear errors for bad input.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${KR_BUILD:-build}
# The sanitized agent is dynamic and cannot be an initramfs init.
[ "$BUILD" = build-asan ] && BUILD=build
agent=$BUILD/kata-agent
. tests/lib/tap.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rootfs-builder/build.sh "$agent" "$work/a.cpio.gz" >/dev/null 2>&1
ok $? "builds"
sleep 1.1	# a different wall-clock second must not change the bytes
rootfs-builder/build.sh "$agent" "$work/b.cpio.gz" >/dev/null 2>&1
cmp -s "$work/a.cpio.gz" "$work/b.cpio.gz"
ok $? "same input, same bytes"

size=$(stat -c %s "$work/a.cpio.gz")
[ "$size" -le $((2 * 1024 * 1024)) ]
ok $? "at most 2 MiB compressed ($size bytes)"

list=$(zcat "$work/a.cpio.gz" | cpio -itv 2>/dev/null)
echo "$list" | grep -qE '^-rwxr-xr-x .* init$'
ok $? "/init is an executable"
echo "$list" | grep -qE '^crw------- .* 5, +1 .* dev/console$'
ok $? "/dev/console is there for the kernel"
mkdir "$work/x" && (cd "$work/x" && zcat ../a.cpio.gz | cpio -id --quiet 2>/dev/null)
file "$work/x/init" | grep -q 'statically linked'
ok $? "/init is statically linked"
"$work/x/init" --version | grep -q 'kata-agent'
ok $? "/init is the agent"
[ "$(echo "$list" | wc -l)" -le 16 ]
ok $? "nothing else in it ($(echo "$list" | wc -l) entries)"

out=$(rootfs-builder/build.sh /nonexistent/agent "$work/c.cpio.gz" 2>&1)
[ $? != 0 ] && echo "$out" | grep -q '/nonexistent/agent' && [ ! -e "$work/c.cpio.gz" ]
ok $? "a missing agent is a clear error and writes nothing"
out=$(rootfs-builder/build.sh /bin/ls "$work/d.cpio.gz" 2>&1)
[ $? != 0 ] && echo "$out" | grep -q 'not statically linked'
ok $? "a dynamic binary is refused"

finish
