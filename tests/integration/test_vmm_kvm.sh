#!/usr/bin/env bash
# kata-vmm's behaviour under real KVM (nested in QEMU TCG on machines without
# /dev/kvm: tests/lib/kvm_nested.sh).  One nested boot runs every case of
# part 1 (the test guest of tests/guest/) and one runs part 2 (a Linux guest
# with blk, net and rng); the host then checks what each case printed.
#
# Part 1, the test guest:
#   pvh        PVH entry, initrd checksum, rng, blk (sector 0 read, sector 1
#              written: checked on the image afterwards), vsock both ways
#              (tests/tools/vsock_peer on the host side), socket removed
#   linux64    the Linux 64-bit boot protocol (boot_params, e820, paging)
#   ro         a read-only disk stays untouched
#   badsum     a wrong initrd checksum: the guest reports FAIL
#   fault      an exception in the guest is reported
#   triple     a triple fault ends the VM: exit status 3
#   sigterm    SIGTERM stops a running guest: exit 0, nothing left
#   bad inputs clear errors and exit statuses, nothing left behind
#   seccomp    no run was refused a syscall (--log-level debug names them)
# Part 2, our guest kernel with a busybox /init: virtio-blk reads the
#   image, virtio-net pings the host over a tap, virtio-rng is the hw_random
#   source, 2 vCPUs come up.
#
# Env: KR_BUILD (build dir of kata-vmm, default build); KR_KVM_NESTED_KEEP=1
# keeps the work dir; the KVM_NESTED_* variables of tests/lib/kvm_nested.sh.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${KR_BUILD:-build}
VMM=$BUILD/kata-vmm
TESTGUEST=build/tests/testguest.elf	# never sanitized: always in build/
PEER=build/tests/vsock_peer
. tests/lib/tap.sh
. tests/lib/kvm_nested.sh

skip_all() { skip_one "$1"; finish; }
[ "$(id -u)" = 0 ] || skip_all "needs root"
for f in "$VMM" "$TESTGUEST" "$PEER"; do
	[ -e "$f" ] || skip_all "$f is not built (make)"
done
kvm_nested_setup
case $? in
0) ;;
1) skip_all "nested KVM: $KVM_NESTED_REASON" ;;
*) ok 1 "nested KVM set-up: $KVM_NESTED_REASON"; finish ;;
esac

W=$(mktemp -d /tmp/kr-vmmkvm.XXXXXX)
if [ "${KR_KVM_NESTED_KEEP:-0}" = 1 ]; then
	trap 'echo "# kept: $W"' EXIT
else
	trap 'rm -rf "$W"' EXIT
fi
export KVM_NESTED_TIMEOUT=${KVM_NESTED_TIMEOUT:-400}

# fnv1a FILE: the test guest's initrd checksum (FNV-1a 32), in hex.
fnv1a() {
	local h=2166136261 b
	for b in $(od -An -v -tu1 "$1"); do
		h=$(( ((h ^ b) * 16777619) & 0xffffffff ))
	done
	printf '%08x' "$h"
}

# The output of case NAME: the lines between "=== NAME" and "=== end NAME".
out_of() { sed -n "/^=== $1\$/,/^=== end $1\$/p" "$W/p1/output"; }
# has NAME REGEX: case NAME printed a line matching REGEX.
# (grep -q quits at the first match: under pipefail a pipe from sed would
# then fail with SIGPIPE, so grep reads a here-string instead.)
has() { grep -Eq -- "$2" <<<"$(out_of "$1")"; }
status_of() { out_of "$1" | sed -n 's/^status \([0-9]*\)$/\1/p' | head -n1; }
show() {
	echo "#   -- $1:"; out_of "$1" | tail -n 20 | sed 's/^/#   /'
}

# ---- part 1: the test guest -----------------------------------------------------
head -c 3000 /dev/urandom >"$W/initrd.bin"
SUM=$(fnv1a "$W/initrd.bin")
dd if=/dev/zero of="$W/disk.img" bs=512 count=64 status=none
printf 'SECTOR0-HELLO' | dd of="$W/disk.img" conv=notrunc status=none
cp "$W/disk.img" "$W/ro.img"

cat >"$W/part1.sh" <<EOF
SUM=$SUM
EOF
cat >>"$W/part1.sh" <<'EOF'
G=testguest.elf
base="console=ttyS0 testguest.timeout_ms=20000"
run() { # NAME CMD...: run a case, print its output and status between markers
	name=$1; shift
	echo "=== $name"
	"$@" 2>&1
	echo "status $?"
	echo "=== end $name"
}
leftovers() { # what a finished run may not leave behind
	for f in /tmp/v.sock /tmp/v.sock_5000; do [ -e $f ] && echo "LEFT $f"; done
	pidof kata-vmm >/dev/null && echo "LEFT kata-vmm process"
	return 0
}

# pvh: everything at once, with the host side of vsock.
pvh() {
	vsock_peer listen /tmp/v.sock_5000 "hello from the host" > /tmp/peer1.log 2>&1 &
	kata-vmm --kernel $G --initrd initrd.bin --log-level debug --rng --blk disk.img \
		--vsock 3,/tmp/v.sock --console /tmp/pvh.console \
		--cmdline "$base testguest.initrd_sum=$SUM testguest.need=rng,blk,vsock testguest.vsock_port=5000 testguest.vsock_listen=6000" &
	vmm=$!
	# The guest listens on 6000 once its own connection is done: retry.
	i=0
	while [ $i -lt 100 ]; do
		vsock_peer connect /tmp/v.sock 6000 "ping from the host" > /tmp/peer2.log 2>&1 && break
		i=$((i + 1)); sleep 0.2
	done
	wait $vmm; st=$?
	wait
	cat /tmp/pvh.console /tmp/peer1.log /tmp/peer2.log
	echo "SECTOR1 $(dd if=disk.img bs=512 skip=1 count=1 2>/dev/null | head -c 18)"
	leftovers
	return $st
}
run pvh pvh

run linux64 kata-vmm --kernel $G --boot linux64 --initrd initrd.bin --console-fd 1 --rng \
	--cmdline "$base testguest.initrd_sum=$SUM testguest.need=rng"

ro() {
	before=$(md5sum < ro.img)
	kata-vmm --kernel $G --blk ro.img,ro --console-fd 1 --cmdline "$base"; st=$?
	[ "$(md5sum < ro.img)" = "$before" ] && echo "RO image unchanged"
	return $st
}
run ro ro

run badsum kata-vmm --kernel $G --initrd initrd.bin --console-fd 1 \
	--cmdline "$base testguest.initrd_sum=12345678"
run fault kata-vmm --kernel $G --console-fd 1 --cmdline "$base testguest.fault=1"
run triple kata-vmm --kernel $G --console-fd 1 --cmdline "$base testguest.triple_fault=1"

sigterm() {
	kata-vmm --kernel $G --console /tmp/hang.console --vsock 3,/tmp/v.sock --rng \
		--cmdline "$base testguest.hang=1" &
	vmm=$!
	i=0
	while ! grep -q 'TESTGUEST: PASS' /tmp/hang.console 2>/dev/null && [ $i -lt 100 ]; do
		i=$((i + 1)); sleep 0.1
	done
	kill -TERM $vmm
	wait $vmm; st=$?
	leftovers
	return $st
}
run sigterm sigterm

# Bad inputs: each must fail with a clear message and leave nothing.
bad() { "$@"; st=$?; leftovers; return $st; }
head -c 8192 /dev/urandom > /tmp/junk.bin
run nokernel bad kata-vmm --kernel /nonexistent --vsock 3,/tmp/v.sock
run junkkernel bad kata-vmm --kernel /tmp/junk.bin --vsock 3,/tmp/v.sock
run noblk bad kata-vmm --kernel $G --vsock 3,/tmp/v.sock --blk /nonexistent.img
run nofs bad kata-vmm --kernel $G --vsock 3,/tmp/v.sock --fs /tmp/nobody.sock,tag
run notap bad kata-vmm --kernel $G --vsock 3,/tmp/v.sock --net notap0
run nokvm bad kata-vmm --kernel $G --kvm /dev/nokvm
run cpus0 bad kata-vmm --kernel $G --cpus 0
long=$(head -c 5000 /dev/zero | tr '\0' x)
run longcmd bad kata-vmm --kernel $G --vsock 3,/tmp/v.sock --cmdline "$long"
run badcid bad kata-vmm --kernel $G --vsock 2,/tmp/v.sock
EOF
kvm_nested_run "$W/p1" "$W/part1.sh" "$VMM" "$TESTGUEST" "$PEER" "$W/initrd.bin" "$W/disk.img" "$W/ro.img"
rc=$?
if [ $rc = 125 ]; then
	ok 1 "nested run of part 1: $KVM_NESTED_ERROR"
	tail -20 "$W/p1/console" | sed 's/^/#   /'
	finish
fi
echo "# part 1: QEMU ${KVM_NESTED_SECONDS}s, script ${KVM_NESTED_SCRIPT_SECONDS:-?}s"

check() { # NAME DESCRIPTION TEST...
	local name=$1 what=$2
	shift 2
	"$@"
	local r=$?
	ok $r "$what"
	[ $r = 0 ] || show "$name"
}

pvh_ok() {
	has pvh '^TESTGUEST: PASS$' && [ "$(status_of pvh)" = 0 ] &&
		has pvh 'boot protocol=pvh' && has pvh 'TESTGUEST: initrd checksum ok' &&
		has pvh 'TESTGUEST: rng ok' && has pvh 'TESTGUEST: blk ok' &&
		has pvh 'sector 0 bytes 0-15: 534543544f52302d48454c4c4f000000' &&
		has pvh '^SECTOR1 KATA-VMM-BLK-WRITE$'
}
check pvh "PVH boot: initrd checksum, rng, blk read and write (sector 1 on the image), exit 0" pvh_ok
vsock_ok() {
	has pvh '^peer: got hello from the guest$' &&
		has pvh 'TESTGUEST: vsock: received "hello from the host\\n"' &&
		has pvh '^peer: echo PING FROM THE HOST$' && has pvh 'TESTGUEST: vsock ok'
}
check pvh "vsock both ways through the hybrid Unix sockets (guest connects to PATH_5000; host CONNECTs to guest port 6000)" vsock_ok
check pvh "nothing left after a run: vsock socket removed, no kata-vmm" eval '! has pvh "^LEFT "'
linux64_ok() {
	has linux64 'boot protocol=linux64' && has linux64 'boot_params at 0x7000: boot_flag=0xaa55' &&
		has linux64 'cr0=0x800000' && has linux64 '^TESTGUEST: PASS$' && [ "$(status_of linux64)" = 0 ]
}
check linux64 "Linux 64-bit boot protocol: boot_params, paging on, PASS" linux64_ok
check ro "read-only disk: the image is unchanged, exit 0" eval 'has ro "^RO image unchanged$" && [ "$(status_of ro)" = 0 ]'
check badsum "wrong initrd checksum: the guest reports FAIL (the test guest can fail)" \
	eval 'has badsum "^TESTGUEST: FAIL" && ! has badsum "^TESTGUEST: PASS"'
check fault "an exception in the guest is caught and reported" eval 'has fault "^TESTGUEST: FAIL exception 6"'
check triple "a triple fault ends the VM with exit status 3" \
	eval 'has triple "^TESTGUEST: PASS$" && has triple "ending with a triple fault" && [ "$(status_of triple)" = 3 ]'
check sigterm "SIGTERM stops a running guest: exit 0, nothing left" \
	eval '[ "$(status_of sigterm)" = 0 ] && ! has sigterm "^LEFT "'

bad_ok() { # NAME STATUS REGEX
	[ "$(status_of "$1")" = "$2" ] && has "$1" "$3" && ! has "$1" '^LEFT '
}
check nokernel "missing kernel: exit 1, names it, nothing left" bad_ok nokernel 1 'nonexistent.*No such file'
check junkkernel "junk kernel: exit 1, says why" bad_ok junkkernel 1 'junk.bin'
check noblk "missing disk image: exit 1, names it, vsock socket removed" bad_ok noblk 1 'nonexistent.img'
check nofs "virtiofsd socket missing: exit 1, names it" bad_ok nofs 1 'nobody.sock'
check notap "missing tap: exit 1, names it" bad_ok notap 1 'notap0'
check nokvm "no KVM device: exit 1, names it" bad_ok nokvm 1 '/dev/nokvm'
check cpus0 "--cpus 0: usage error (exit 2)" bad_ok cpus0 2 'cpus'
check longcmd "command line too long: exit 1, says so" bad_ok longcmd 1 'cmdline|command line'
check badcid "vsock CID 2 (the host's): usage error" bad_ok badcid 2 'CID'
ok "$(grep -q 'seccomp refused' "$W/p1/output"; [ $? = 1 ]; echo $?)" \
	"no syscall of any run was refused by the seccomp allow-list"

# ---- part 2: Linux with blk, net, rng and 2 vCPUs ----------------------------------
if ! vmlinux=$(guest-kernel-config/build.sh --print-vmlinux 2>"$W/kernel.log"); then
	tail -20 "$W/kernel.log" | sed 's/^/#   /'
	ok 1 "guest kernel builds (part 2)"
	finish
fi
l2=$W/l2root
mkdir -p "$l2/bin" "$l2/proc" "$l2/dev" "$l2/sys"
cp "$KVM_NESTED_BUSYBOX" "$l2/bin/busybox"
cat >"$l2/init" <<'EOF'
#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
echo "L2: cpus $($B nproc)"
echo "L2: vda sectors $($B cat /sys/block/vda/size)"
echo "L2: vda head $($B head -c 13 /dev/vda)"
echo "L2: rng $($B cat /sys/class/misc/hw_random/rng_current 2>&1)"
$B ip link set lo up; $B ip link set eth0 up; $B ip addr add 10.77.0.2/24 dev eth0
echo "L2: mac $($B cat /sys/class/net/eth0/address)"
$B ping -c 2 -W 5 10.77.0.1 >/dev/null 2>&1 && echo "L2: ping ok" || echo "L2: ping failed"
$B reboot -f
EOF
chmod 755 "$l2/init"
(cd "$l2" && find . | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$W/l2.cpio.gz"
kvm_nested_run "$W/p2" - "$VMM" "$vmlinux=/t/vmlinux" "$W/l2.cpio.gz" "$W/disk.img" <<'EOF'
tunctl -t tap0 >/dev/null && ip link set tap0 up && ip addr add 10.77.0.1/24 dev tap0
timeout 300 kata-vmm --kernel vmlinux --initrd l2.cpio.gz --memory 256 --cpus 2 \
	--blk disk.img,ro --net tap0,52:54:00:aa:bb:cc --rng --console-fd 1 \
	--cmdline "console=ttyS0 reboot=k panic=-1 pci=off acpi=off"
echo "kata-vmm exit $?"
EOF
rc=$?
o=$W/p2/output
if [ $rc = 125 ]; then
	ok 1 "nested run of part 2: $KVM_NESTED_ERROR"
else
	echo "# part 2: QEMU ${KVM_NESTED_SECONDS}s, script ${KVM_NESTED_SCRIPT_SECONDS:-?}s"
	grep -q '^kata-vmm exit 0$' "$o" && grep -q '^L2: cpus 2$' "$o"
	ok $? "Linux boots with 2 vCPUs and its reboot ends kata-vmm with status 0"
	grep -q '^L2: vda sectors 64$' "$o" && grep -q '^L2: vda head SECTOR0-HELLO$' "$o"
	ok $? "Linux reads the virtio-blk disk (64 sectors, first bytes)"
	grep -q '^L2: mac 52:54:00:aa:bb:cc$' "$o" && grep -q '^L2: ping ok$' "$o"
	ok $? "Linux's virtio-net (MAC from --net) pings the host through the tap"
	grep -q '^L2: rng virtio_rng' "$o"
	ok $? "Linux uses virtio-rng as its hw_random source"
fi
[ "$fail" = 0 ] || { echo "#   -- part 2 output:"; tail -n 30 "$o" | sed 's/^/#   /'; }
finish
