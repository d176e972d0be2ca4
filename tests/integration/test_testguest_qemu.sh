#!/usr/bin/env bash
# The freestanding test guest (tests/guest/, the guest the kata-vmm tests
# boot) validated under QEMU TCG on `-M microvm`: QEMU loads the ELF through
# its PVH note; the guest checks the boot state, the initrd checksum, and
# drives virtio-rng and virtio-blk over virtio-mmio (QEMU announces them
# with virtio_mmio.device= on the command line when ACPI is off).  Also the
# Linux 64-bit entry (the guest re-enters itself with a zero page it builds,
# testguest.linux64_selftest=1), failure paths (wrong initrd_sum, an
# exception, a legacy virtio-mmio device, a missing device), and the vsock
# driver against a simulated device (tests/guest/hostsim/: QEMU has no
# vhost-vsock here).  tests/guest/README.md describes the output lines.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${KR_BUILD:-build}
GUEST=$BUILD/tests/testguest.elf
. tests/lib/tap.sh
skip_all() { n=$((n + 1)); skip=$((skip + 1)); echo "ok $n - test guest # SKIP $1"; finish; }

command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 not installed"
command -v python3 >/dev/null || skip_all "python3 not installed"
[ -f "$GUEST" ] || skip_all "$GUEST not built (make $GUEST)"

W=$(mktemp -d /tmp/kr-tg.XXXXXX)
trap 'rm -rf "$W"' EXIT

# Inputs: a random initrd; a 1 MiB disk whose first 16 bytes are random.
head -c 5000 /dev/urandom >"$W/initrd"
SUM=$(python3 -c '
import sys
h = 0x811c9dc5
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 0x01000193) & 0xffffffff
print("%08x" % h)' "$W/initrd")
BAD=$(printf '%08x' $((0x$SUM ^ 1)))
head -c 16 /dev/urandom >"$W/disk.img"
truncate -s 1M "$W/disk.img"
cp "$W/disk.img" "$W/ro.img"
SECTOR0=$(head -c 16 "$W/disk.img" | od -An -v -tx1 | tr -d ' \n')
MODERN=(-global virtio-mmio.force-legacy=false)
RNG=(-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0)
BLK=(-drive id=d0,file="$W/disk.img",format=raw,if=none -device virtio-blk-device,drive=d0,serial=kata-blk-0)

# boot NAME APPEND QEMU-ARGS...: serial output in $W/NAME.out, exit status
# in $W/NAME.rc (isa-debug-exit: PASS 0 -> 1, FAIL 1 -> 3).
boot() {
	local name=$1 append=$2
	shift 2
	timeout 60 qemu-system-x86_64 -M microvm,accel=tcg,acpi=off -m 128 -smp 1 \
		-nodefaults -no-user-config -nographic -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=4 \
		-kernel "$GUEST" -append "$append" "$@" \
		>"$W/$name.out" 2>"$W/$name.err" </dev/null
	echo $? >"$W/$name.rc"
}
line() { grep -qxF -- "$2" "$W/$1.out"; }	# an exact line
match() { grep -qE -- "$2" "$W/$1.out"; }	# a line matching an ERE
count() { grep -cE -- "$2" "$W/$1.out"; }
rc() { cat "$W/$1.rc"; }
show() {	# the serial output as TAP comments, after a failed check
	sed 's/^/#   /' "$W/$1.out" | tail -60
	sed 's/^/#   stderr: /' "$W/$1.err" | tail -5
}

# ---- 1. everything that works under QEMU ----------------------------------
boot full "console=ttyS0 testguest.initrd_sum=$SUM testguest.need=rng,blk" \
	-initrd "$W/initrd" "${MODERN[@]}" "${RNG[@]}" "${BLK[@]}"
f0=$fail
[ "$(rc full)" = 1 ] && [ "$(tail -n 1 "$W/full.out")" = "TESTGUEST: PASS" ]
ok $? "PASS line and isa-debug-exit status 1 (rc $(rc full))"
[ "$(head -c 1 "$W/full.out")" = T ] && [ "$(head -n 1 "$W/full.out")" = "TESTGUEST: boot protocol=pvh" ]
ok $? "first byte 'T'; QEMU entered through the PVH note"
! match full '^TESTGUEST: check failed'
ok $? "no failed check"
match full '^TESTGUEST: pvh start_info at 0x[0-9a-f]+: magic=0x336ec578 version=1 .*nr_modules=1 ' &&
	match full '^TESTGUEST: cpu cr0=0x[0-9a-f]+ cr3=0x[0-9a-f]+ cr4=0x0 efer=0x0 rflags=0x[0-9a-f]+$'
ok $? "PVH start info and 32-bit entry state reported"
match full '^TESTGUEST: memmap addr=0x0000000000100000 size=0x[0-9a-f]{16} type=1$' &&
	match full '^TESTGUEST: image 0x100000-0x[0-9a-f]+ in RAM$'
ok $? "memory map printed; the image lies in RAM"
match full "^TESTGUEST: cmdline \"console=ttyS0 testguest.initrd_sum=$SUM testguest.need=rng,blk virtio_mmio.device=" &&
	[ "$(count full '^TESTGUEST: virtio-mmio device [01]: base=0xfeb00[0-9a-f]{3} size=0x200 irq=[0-9]+$')" = 2 ]
ok $? "command line read; QEMU's two virtio_mmio.device= entries parsed"
line full "TESTGUEST: initrd checksum ok" && match full "^TESTGUEST: initrd addr=0x[0-9a-f]+ size=5000 fnv1a32=$SUM$"
ok $? "initrd found through the PVH module list; FNV-1a matches"
line full "TESTGUEST: rng ok" && line full "TESTGUEST: rng: entropy request: InterruptStatus=0x1 (used-buffer bit set)"
ok $? "virtio-rng: 64 non-zero bytes; InterruptStatus bit 0 set"
line full "TESTGUEST: blk: capacity=2048 sectors" && line full "TESTGUEST: blk: sector 0 bytes 0-15: $SECTOR0"
ok $? "virtio-blk: capacity and sector 0 as written by the host ($SECTOR0)"
python3 - "$W/disk.img" <<'PY'
import struct, sys
s = open(sys.argv[1], "rb").read()[512:1024]
want = bytearray(i & 0xff for i in range(512))
want[0:26] = b"KATA-VMM-BLK-WRITE" + struct.pack("<Q", 1)
sys.exit(0 if s == want else 1)
PY
r=$?
[ $r = 0 ] && line full "TESTGUEST: blk: sector 1 written and read back"
ok $? "virtio-blk: sector 1 on the host image holds the guest's pattern"
line full "TESTGUEST: blk: flush ok" && line full 'TESTGUEST: blk: id "kata-blk-0"' &&
	line full "TESTGUEST: blk: read past the end: status 1" && line full "TESTGUEST: blk ok"
ok $? "virtio-blk: FLUSH, GET_ID, out-of-range read refused"
line full "TESTGUEST: blk: read sector 0: InterruptStatus=0x1 (used-buffer bit set)"
ok $? "virtio-blk: InterruptStatus bit 0 set"
[ "$fail" = "$f0" ] || show full

# ---- 2. a wrong initrd_sum fails ------------------------------------------
boot badsum "testguest.initrd_sum=$BAD" -initrd "$W/initrd" "${MODERN[@]}" "${RNG[@]}"
[ "$(rc badsum)" = 3 ] && [ "$(tail -n 1 "$W/badsum.out")" = "TESTGUEST: FAIL initrd checksum $SUM, expected $BAD" ]
ok $? "wrong testguest.initrd_sum: FAIL line and exit status 3 (rc $(rc badsum))"

# ---- 3. the Linux 64-bit entry (the guest plays the VMM) ------------------
boot linux64 "testguest.initrd_sum=$SUM testguest.linux64_selftest=1 testguest.need=blk" \
	-initrd "$W/initrd" "${MODERN[@]}" \
	-drive id=d1,file="$W/ro.img",format=raw,if=none,readonly=on -device virtio-blk-device,drive=d1
f0=$fail
[ "$(rc linux64)" = 1 ] && [ "$(tail -n 1 "$W/linux64.out")" = "TESTGUEST: PASS" ] &&
	! match linux64 '^TESTGUEST: check failed'
ok $? "linux64 self-test: PASS (rc $(rc linux64))"
line linux64 "TESTGUEST: boot protocol=linux64" &&
	line linux64 "TESTGUEST: cpu cr0=0x80000011 cr3=0x9000 cr4=0x20 efer=0x500 rflags=0x2" &&
	line linux64 "TESTGUEST: cpu cs=0x10 ds=0x18 ss=0x18 rsp=0x8ff0 gdt=0x500/0x1f" &&
	match linux64 '^TESTGUEST: boot_params at 0x7000: boot_flag=0xaa55 header=0x53726448 .* cmd_line_ptr=0x20000 .*ramdisk_size=0x1388 '
ok $? "linux64 entry: long-mode state, RSI/RSP, boot_params header checked"
[ "$(count linux64 '^TESTGUEST: initrd checksum ok$')" = 2 ] &&
	[ "$(count linux64 '^TESTGUEST: blk: read-only device, write test skipped$')" = 2 ] &&
	cmp -s "$W/ro.img" <(head -c 16 "$W/disk.img" | cat - /dev/zero | head -c 1048576)
ok $? "both entries: initrd checksum; read-only disk detected and left alone"
[ "$fail" = "$f0" ] || show linux64

# ---- 4. failure paths -------------------------------------------------------
boot fault "testguest.fault=1" "${MODERN[@]}"
[ "$(rc fault)" = 3 ] && match fault '^TESTGUEST: FAIL exception 6 err=0x0 rip=0x[0-9a-f]+ cr2=0x0$'
ok $? "an exception (ud2) is caught by the IDT: FAIL line, status 3 (rc $(rc fault))"
boot legacy "" "${RNG[@]}"
[ "$(rc legacy)" = 3 ] && match legacy '^TESTGUEST: FAIL virtio 0 at 0xfeb00[0-9a-f]{3}: version 1, expected 2$'
ok $? "a legacy (version 1) virtio-mmio device is refused (rc $(rc legacy))"
boot need "testguest.need=vsock testguest.nosuch=1" "${MODERN[@]}" "${RNG[@]}"
[ "$(rc need)" = 3 ] && line need "TESTGUEST: FAIL bad parameter testguest.nosuch=1" &&
	line need "TESTGUEST: check failed: testguest.need: no working vsock device"
ok $? "unknown testguest.* parameter and a missing needed device fail (rc $(rc need))"

# ---- 5. the vsock driver against a simulated device -------------------------
if gcc -std=gnu11 -O1 -g -Wall -Wextra -Werror -Itests/guest -Ihypervisor/kvm \
	tests/guest/hostsim/vsock_sim.c tests/guest/vsock.c -o "$W/vsock_sim" 2>"$W/sim.err"; then
	for s in connect refused listen; do
		"$W/vsock_sim" "$s" >"$W/sim-$s.out" 2>&1
		r=$?
		[ $r = 0 ] && line "sim-$s" "SIM: PASS"
		ok $? "vsock driver, simulated device: $s"
		[ $r = 0 ] || show "sim-$s"
	done
else
	ok 1 "vsock simulation builds"
	sed 's/^/#   /' "$W/sim.err"
fi

# Informational: exec -> first serial byte -> exit (TCG; includes QEMU's
# start-up and the qboot firmware).
python3 - "$GUEST" <<'PY'
import subprocess, sys, time
args = ["qemu-system-x86_64", "-M", "microvm,accel=tcg,acpi=off", "-m", "128",
        "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", sys.argv[1]]
t0 = time.monotonic()
p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                     stdin=subprocess.DEVNULL)
p.stdout.read(1)
t1 = time.monotonic()
p.stdout.read()
p.wait()
t2 = time.monotonic()
print("# exec -> first serial byte %.0f ms, -> exit %.0f ms (no devices)" %
      ((t1 - t0) * 1000, (t2 - t0) * 1000))
PY
finish
