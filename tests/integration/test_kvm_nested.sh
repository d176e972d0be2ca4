#!/usr/bin/env bash
# kata-vmm under real KVM on a machine without /dev/kvm: QEMU TCG with -cpu
# max emulates AMD SVM, and the "kvmhost" flavour of our guest kernel booted
# in it has a working /dev/kvm (tests/lib/kvm_nested.sh).  One nested boot
# per case, so a hang or crash in one case cannot take the others with it.
#
#   (a) the nested host boots, has /dev/kvm, and tests/tools/kvm_probe runs
#       vCPUs on it (IO, MMIO and HLT exits; in-kernel irqchip and PIT);
#   (b) kata-vmm cases, each skipped while what it needs is not built:
#       --help; the test guest (tests/guest/) with --rng; a Linux guest
#       (our guest kernel, a busybox initramfs).  Add cases the same way.
#
# Env: KR_BUILD (build dir of kata-vmm, default build); KR_KVM_NESTED_KEEP=1
# keeps the work dir (outputs, consoles) and prints its path; the
# KVM_NESTED_* variables of tests/lib/kvm_nested.sh.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${KR_BUILD:-build}
VMM=$BUILD/kata-vmm
TESTGUEST=build/tests/testguest.elf	# never sanitized: always in build/
. tests/lib/tap.sh
skip_all() { n=$((n + 1)); skip=$((skip + 1)); echo "ok $n - nested KVM # SKIP $1"; finish; }
. tests/lib/kvm_nested.sh

kvm_nested_setup
case $? in
0) ;;
1) skip_all "$KVM_NESTED_REASON" ;;
*) ok 1 "nested KVM set-up: $KVM_NESTED_REASON"
   [ -n "$KVM_NESTED_LOG" ] && tail -20 "$KVM_NESTED_LOG" | sed 's/^/#   /'
   finish ;;
esac
echo "# kvmhost kernel: $KVM_NESTED_KERNEL"

W=$(mktemp -d /tmp/kr-kvmn.XXXXXX)
if [ "${KR_KVM_NESTED_KEEP:-0}" = 1 ]; then
	trap 'echo "# kept: $W"' EXIT
else
	trap 'rm -rf "$W"' EXIT
fi
export KVM_NESTED_TIMEOUT=${KVM_NESTED_TIMEOUT:-300}

# show DIR: the end of a run's output and console, as TAP comments.
show() {
	[ -n "$KVM_NESTED_ERROR" ] && echo "#   harness: $KVM_NESTED_ERROR"
	echo "#   -- output (last 25 lines):"; tail -n 25 "$1/output" 2>/dev/null | sed 's/^/#   /'
	echo "#   -- console (last 15 lines):"; tail -n 15 "$1/console" 2>/dev/null | sed 's/^/#   /'
}
timing() { echo "QEMU ${KVM_NESTED_SECONDS}s, boot ${KVM_NESTED_BOOT_SECONDS:-?}s, script ${KVM_NESTED_SCRIPT_SECONDS:-?}s"; }

# ---- (a) the nested host and its /dev/kvm --------------------------------------------
if ! make -s build/tests/kvm_probe >"$W/make.log" 2>&1; then
	sed 's/^/#   /' "$W/make.log"
	ok 1 "make build/tests/kvm_probe"
	finish
fi
kvm_nested_run "$W/probe" - build/tests/kvm_probe <<'EOF'
echo "kernel $(uname -r), $(nproc) cpus"
grep -o -m1 -w -e svm -e vmx /proc/cpuinfo | sed 's/^/cpu flag /'
ls -l /dev/kvm
kvm_probe
EOF
rc=$?
f0=$fail
[ $rc != 125 ]
ok $? "nested host boots and runs the script ($(timing))"
if [ $rc = 125 ]; then show "$W/probe"; finish; fi
flag=$(sed -n 's/^cpu flag //p' "$W/probe/output")
[ "$flag" = svm ] || [ "$flag" = vmx ]
ok $? "nested host CPU has ${flag:-no SVM/VMX}"
grep -q '^c.* 10, *232 .*/dev/kvm$' "$W/probe/output"
ok $? "/dev/kvm is there (char 10:232)"
verdict=$(grep '^kvm_probe: \(PASS\|FAIL\)' "$W/probe/output")
[ $rc = 0 ] && [ "$verdict" = "kvm_probe: PASS" ]
ok $? "kvm_probe: vCPUs run on /dev/kvm (rc $rc: ${verdict:-no verdict})"
[ $fail = "$f0" ] || show "$W/probe"

# ---- (b) kata-vmm, one case per boot ---------------------------------------------------
# (b1) it runs at all there: its shared libraries, --help.
if [ ! -x "$VMM" ]; then
	skip_one "kata-vmm --help in the nested host: $VMM not built"
else
	kvm_nested_run "$W/help" - "$VMM" <<'EOF'
kata-vmm --help
EOF
	rc=$?
	[ $rc = 0 ] && grep -q '^Usage: kata-vmm' "$W/help/output"
	r=$?
	ok $r "kata-vmm --help in the nested host (rc $rc; $(timing))"
	[ $r = 0 ] || show "$W/help"
fi

# (b2) the freestanding test guest: boot protocol, serial, virtio-rng.
if [ ! -x "$VMM" ]; then
	skip_one "kata-vmm runs the test guest: $VMM not built"
elif [ ! -r "$TESTGUEST" ]; then
	skip_one "kata-vmm runs the test guest: $TESTGUEST not built (make $TESTGUEST)"
else
	kvm_nested_run "$W/testguest" - "$VMM" "$TESTGUEST" <<'EOF'
timeout 120 kata-vmm --kernel testguest.elf --console-fd 1 --rng --timing
echo "kata-vmm exit $?"
EOF
	rc=$?
	[ $rc = 0 ] && grep -q '^TESTGUEST: PASS$' "$W/testguest/output" &&
		grep -q '^kata-vmm exit 0$' "$W/testguest/output"
	r=$?
	ok $r "kata-vmm runs the test guest to TESTGUEST: PASS and exits 0 ($(sed -n 's/^kata-vmm exit /exit /p' "$W/testguest/output"); $(timing))"
	[ $r = 0 ] || show "$W/testguest"
fi

# (b3) a Linux guest: our guest kernel (PVH vmlinux) with a busybox /init
# that prints a line and reboots (reboot=k: the i8042 reset ends kata-vmm).
if [ ! -x "$VMM" ]; then
	skip_one "kata-vmm boots Linux: $VMM not built"
elif ! guest_vmlinux=$(guest-kernel-config/build.sh --print-vmlinux 2>"$W/kernel.log"); then
	tail -20 "$W/kernel.log" | sed 's/^/#   /'
	ok 1 "guest kernel builds (for kata-vmm boots Linux)"
else
	l2=$W/l2root
	mkdir -p "$l2/bin" "$l2/proc" "$l2/dev"
	cp "$KVM_NESTED_BUSYBOX" "$l2/bin/busybox"
	cat >"$l2/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "L2: hello from Linux $(/bin/busybox uname -r), $(/bin/busybox nproc) cpus, up $(/bin/busybox cut -d' ' -f1 /proc/uptime)s"
/bin/busybox reboot -f
EOF
	chmod 755 "$l2/init"
	(cd "$l2" && find . | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$W/l2.cpio.gz"
	kvm_nested_run "$W/linux" - "$VMM" "$guest_vmlinux=/t/vmlinux" "$W/l2.cpio.gz" <<'EOF'
timeout 240 kata-vmm --kernel vmlinux --initrd l2.cpio.gz --memory 256 \
	--cmdline "console=ttyS0 reboot=k panic=-1" --timing
echo "kata-vmm exit $?"
EOF
	rc=$?
	[ $rc = 0 ] && grep -q '^L2: hello from Linux' "$W/linux/output" &&
		grep -q '^kata-vmm exit 0$' "$W/linux/output"
	r=$?
	ok $r "kata-vmm boots our guest kernel to /init and exits 0 on reboot ($(sed -n 's/^kata-vmm exit /exit /p' "$W/linux/output"); $(timing))"
	[ $r = 0 ] || show "$W/linux"
fi

finish
