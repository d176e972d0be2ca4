# shellcheck shell=bash disable=SC2034,SC2054
# (SC2034: the KVM_NESTED_* results are for the caller; SC2054: QEMU options have commas)
# tests/lib/kvm_nested.sh: run commands under real KVM on a machine without
# /dev/kvm (sourced by tests, from any directory).
#
# QEMU TCG with `-cpu max` emulates AMD SVM, so a Linux booted in it with
# KVM_AMD (the "kvmhost" flavour of our guest kernel: guest-kernel-config/
# build.sh --flavour kvmhost) has a working /dev/kvm: nested KVM.  This
# library boots that kernel with a throw-away busybox initramfs holding the
# files a test names, runs a shell script there, and hands back the script's
# output and exit status.
#
#   kvm_nested_setup
#       Finds or builds (cached; about 18 minutes on 2 cores the first time) the kvmhost
#       kernel, checks for qemu-system-x86_64 and busybox (apt-get installs
#       busybox-static when it is missing and we are root).  Sets
#       KVM_NESTED_KERNEL.  Returns 0 when ready, 1 when this machine cannot
#       run it (skip: why in KVM_NESTED_REASON), 2 when something failed that
#       should not (fail: KVM_NESTED_REASON, build log in KVM_NESTED_LOG).
#
#   kvm_nested_run OUTDIR SCRIPT [FILE...]
#       SCRIPT: a file, or - for stdin (a here-document); run with busybox sh,
#       cwd /t, PATH /t first, as root, stdin /dev/null, stderr on stdout.
#       FILE: a host file or directory, copied to /t/<its name>; or SRC=DEST
#       to put it at the absolute guest path DEST.  Dynamically linked ELF
#       files get their shared libraries and loader (found with ldd) copied
#       to the same paths, so build/kata-vmm runs as built.  (Why not a
#       static kata-vmm: this tests the very binary the suite built, needs no
#       second link of it, and works for the sanitized build too, whose
#       libasan cannot be linked statically.  ldd misses only libraries
#       loaded with dlopen, e.g. NSS modules; kata-vmm loads none.)
#       The guest has proc, sys, devtmpfs (/dev/kvm, /dev/net/tun), devpts,
#       tmpfs on /tmp /run /dev/shm, lo up, busybox applets.  Files the script
#       writes under /out come back in OUTDIR/files/ (tar through a
#       virtio-blk disk).  Tap devices: `tunctl -t tap0` (busybox `ip` has
#       no tuntap).
#       Writes OUTDIR/output (the script's stdout+stderr), OUTDIR/console (the
#       whole serial console: kernel log, output, kernel messages logged while
#       the script ran as "kmsg: ..." lines), OUTDIR/qemu.log, OUTDIR/cmdline.
#       Returns the script's exit status; 125 with KVM_NESTED_ERROR set when
#       there is none (QEMU failed, kernel panic, timeout; see OUTDIR/console).
#       KVM_NESTED_ERROR can also be set next to a real status (QEMU exited
#       non-zero after the script ended; /out could not be unpacked).
#       Sets KVM_NESTED_SECONDS (QEMU start to exit) and, from the guest's
#       clock, KVM_NESTED_BOOT_SECONDS (kernel start to the script) and
#       KVM_NESTED_SCRIPT_SECONDS (the script alone).
#
# Environment (all optional; read by each kvm_nested_run):
#   KVM_NESTED_KERNEL   kernel image to boot (default: the cached kvmhost one)
#   KVM_NESTED_MACHINE  q35 (default) or microvm
#   KVM_NESTED_SMP      vCPUs (default 1)       KVM_NESTED_MEM  MiB (default 1024)
#   KVM_NESTED_TIMEOUT  seconds for the whole run (default 600)
#   KVM_NESTED_APPEND   extra kernel command line
#   KVM_NESTED_OUT_MB   size of the /out export disk (default 256, sparse)
#   KVM_NESTED_QEMU     QEMU binary (default qemu-system-x86_64)
#   KATA_RUN_CACHE      kernel cache root (see guest-kernel-config/README.md)
#
# Why these defaults (measured on a shared 2-core host, QEMU 7.2 TCG): one run
# (initramfs, QEMU start to exit) of a trivial script takes about 2.2 s on
# q35 and 1.6 s on microvm with -smp 1; -smp 2 costs 0.5-1 s more per boot
# and makes kata-vmm booting a 1-vCPU Linux slower (5.0 -> 7-8 s), and helps
# only a 2-vCPU L2 guest (script 4.2 -> 3.5 s).  microvm is faster but under
# TCG needs the host's TSC rate (tsc_early_khz, taken here from "cpu MHz"
# in /proc/cpuinfo, right only on constant-TSC hosts) or its boot can hang
# (guest-kernel-config/README.md); q35 has no such dependency, so it is the
# default.  Set KVM_NESTED_SMP=2 for tests of multi-vCPU guests.

KVM_NESTED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KVM_NESTED_REASON=
KVM_NESTED_ERROR=
KVM_NESTED_LOG=
KVM_NESTED_BUSYBOX=

kvm_nested_setup() {
	local log tool
	KVM_NESTED_REASON=
	if [ "$(uname -m)" != x86_64 ]; then
		KVM_NESTED_REASON="needs an x86_64 host (this is $(uname -m))"; return 1
	fi
	if ! command -v "${KVM_NESTED_QEMU:-qemu-system-x86_64}" >/dev/null; then
		KVM_NESTED_REASON="${KVM_NESTED_QEMU:-qemu-system-x86_64} not installed (apt-get install qemu-system-x86)"
		return 1
	fi
	for tool in cpio timeout tar; do
		command -v $tool >/dev/null || { KVM_NESTED_REASON="$tool not installed"; return 1; }
	done
	KVM_NESTED_BUSYBOX=$(command -v busybox || true)
	[ -n "$KVM_NESTED_BUSYBOX" ] || [ ! -x /bin/busybox ] || KVM_NESTED_BUSYBOX=/bin/busybox
	if [ -z "$KVM_NESTED_BUSYBOX" ]; then
		if [ "$(id -u)" != 0 ]; then
			KVM_NESTED_REASON="busybox not installed (apt-get install busybox-static; needs root)"
			return 1
		fi
		log=$(mktemp /tmp/kvm-nested-apt.XXXXXX)
		if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
				busybox-static >"$log" 2>&1; then
			apt-get update >>"$log" 2>&1
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
				busybox-static >>"$log" 2>&1
		fi
		KVM_NESTED_BUSYBOX=$(command -v busybox || true)
		[ -n "$KVM_NESTED_BUSYBOX" ] || [ ! -x /bin/busybox ] || KVM_NESTED_BUSYBOX=/bin/busybox
		if [ -z "$KVM_NESTED_BUSYBOX" ]; then
			KVM_NESTED_LOG=$log
			KVM_NESTED_REASON="apt-get install busybox-static failed (log: $log)"
			return 2
		fi
		rm -f "$log"
	fi
	if [ -n "${KVM_NESTED_KERNEL:-}" ]; then
		[ -r "$KVM_NESTED_KERNEL" ] && return 0
		KVM_NESTED_REASON="KVM_NESTED_KERNEL=$KVM_NESTED_KERNEL not readable"; return 2
	fi
	KVM_NESTED_LOG=${TMPDIR:-/tmp}/kr-kvmhost-kernel-build.log
	if ! KVM_NESTED_KERNEL=$("$KVM_NESTED_ROOT/guest-kernel-config/build.sh" \
			--flavour kvmhost --print-path 2>"$KVM_NESTED_LOG"); then
		KVM_NESTED_KERNEL=
		# Nothing to build with and nobody to install it: not this machine's job.
		if grep -q 'need root to apt-get\|cannot write the cache' "$KVM_NESTED_LOG"; then
			KVM_NESTED_REASON="cannot build the kvmhost kernel here: $(grep 'error:' "$KVM_NESTED_LOG" | tail -1)"
			return 1
		fi
		KVM_NESTED_REASON="guest-kernel-config/build.sh --flavour kvmhost failed (log: $KVM_NESTED_LOG)"
		return 2
	fi
	return 0
}

# _kvm_nested_add ROOT SRC DEST: copy SRC to ROOT/DEST, with the shared
# libraries of a dynamically linked ELF file.
_kvm_nested_add() {
	local root=$1 src=$2 dest=$3 lib
	mkdir -p "$root/$(dirname "$dest")" || return 1
	cp -a "$src" "$root/$dest" || return 1
	[ -f "$src" ] && _kvm_nested_is_dynamic "$src" || return 0
	# ldd lines: "libx.so.1 => /lib/.../libx.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)"
	# and "linux-vdso.so.1 (0x...)" (no file).  A library ldd cannot find is an error.
	if ldd "$src" | grep -q 'not found'; then
		echo "kvm_nested: $src: $(ldd "$src" | grep 'not found' | tr -s '\t\n' '  ')" >&2
		return 1
	fi
	for lib in $(ldd "$src" | sed -n 's/.*=> \(\/[^ ]*\) (0x.*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p'); do
		[ -e "$root/$lib" ] && continue
		mkdir -p "$root/$(dirname "$lib")" && cp -L "$lib" "$root/$lib" || return 1
	done
}
_kvm_nested_is_dynamic() {
	[ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ] &&
		readelf -lW "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

# The guest's /init.  @TOKEN@ is replaced with a per-run marker.
_kvm_nested_init() {
	cat <<'EOF'
#!/bin/busybox sh
export PATH=/t:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm /dev/net
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
[ -c /dev/kvm ] || mknod /dev/kvm c 10 232
[ -c /dev/net/tun ] || mknod /dev/net/tun c 10 200
ip link set lo up 2>/dev/null
hostname kvm-nested
# Kernel messages would interleave with the script's output: log only
# emergencies to the console while it runs, print the rest afterwards.
dmesg -n 1
nk=$(dmesg | wc -l)
t0=$(cut -d' ' -f1 /proc/uptime)
echo "@TOKEN@-BEGIN $t0"
cd /t && sh /t/.script </dev/null 2>&1
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
echo "@TOKEN@-END $t1"
echo "NESTED-EXIT $rc"
dmesg | tail -n +$((nk + 1)) | sed 's/^/kmsg: /'
if [ -n "$(ls -A /out)" ]; then
	tar -cf /dev/vda -C /out . && sync
	echo "NESTED-EXPORT $?"
fi
poweroff -f
EOF
}

kvm_nested_run() {
	local outdir=${1:?usage: kvm_nested_run OUTDIR SCRIPT [FILE...]} script=${2:?usage: kvm_nested_run OUTDIR SCRIPT [FILE...]}
	shift 2
	local work root spec src dest token machine smp mem tmo append disk qrc start
	local -a qemu dev
	KVM_NESTED_ERROR='' KVM_NESTED_SECONDS='' KVM_NESTED_BOOT_SECONDS='' KVM_NESTED_SCRIPT_SECONDS=''
	if [ -z "${KVM_NESTED_KERNEL:-}" ] || [ -z "$KVM_NESTED_BUSYBOX" ]; then
		KVM_NESTED_ERROR="kvm_nested_setup has not succeeded"; return 125
	fi
	mkdir -p "$outdir" && rm -rf "$outdir/files" "$outdir/output" "$outdir/console" || return 125
	work=$(mktemp -d "${TMPDIR:-/tmp}/kvm-nested.XXXXXX") || return 125
	root=$work/root
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,t,out,root,etc}

	# busybox (/init makes the applet links: 300 ln -s here take over a second)
	if ! _kvm_nested_add "$root" "$KVM_NESTED_BUSYBOX" /bin/busybox; then
		KVM_NESTED_ERROR="cannot copy $KVM_NESTED_BUSYBOX"; rm -rf "$work"; return 125
	fi
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"

	# the test's files
	for spec in "$@"; do
		case $spec in
		*=/*) src=${spec%%=/*} dest=/${spec#*=/} ;;
		*) src=$spec dest=/t/$(basename "$spec") ;;
		esac
		if [ ! -e "$src" ] || ! _kvm_nested_add "$root" "$src" "$dest"; then
			KVM_NESTED_ERROR="cannot copy $src into the initramfs"; rm -rf "$work"; return 125
		fi
	done
	if [ "$script" = - ]; then cat >"$root/t/.script"; else cp "$script" "$root/t/.script"; fi ||
		{ KVM_NESTED_ERROR="cannot read the script $script"; rm -rf "$work"; return 125; }

	token=KVMN$$x$RANDOM$RANDOM
	_kvm_nested_init | sed "s/@TOKEN@/$token/g" >"$root/init"
	chmod 755 "$root/init"
	# Uncompressed: under TCG decompressing costs more than QEMU reading more.
	if ! (cd "$root" && find . | cpio --quiet -o -H newc -R 0:0) >"$work/initrd.cpio"; then
		KVM_NESTED_ERROR="cpio failed"; rm -rf "$work"; return 125
	fi

	# virtio-rng: without an entropy source the kernel's crng is ready only
	# 3-4 s after boot, and getrandom() (kata-vmm's virtio-rng backend,
	# anything seeding from it) blocks until then.
	disk=$work/out.img
	truncate -s "${KVM_NESTED_OUT_MB:-256}M" "$disk"
	machine=${KVM_NESTED_MACHINE:-q35} smp=${KVM_NESTED_SMP:-1} mem=${KVM_NESTED_MEM:-1024}
	tmo=${KVM_NESTED_TIMEOUT:-600}
	append="console=ttyS0 panic=-1 ${KVM_NESTED_APPEND:-}"
	case $machine in
	q35) dev=(-device virtio-blk-pci,drive=out -device virtio-rng-pci) ;;
	microvm)
		# Under TCG microvm needs the TSC rate (guest-kernel-config/README.md).
		local khz
		khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
		[ -n "$khz" ] && append="$append tsc_early_khz=$khz tsc=reliable"
		dev=(-global virtio-mmio.force-legacy=false -device virtio-blk-device,drive=out
			-device virtio-rng-device)
		;;
	*) KVM_NESTED_ERROR="KVM_NESTED_MACHINE=$machine: q35 or microvm"; rm -rf "$work"; return 125 ;;
	esac
	qemu=("${KVM_NESTED_QEMU:-qemu-system-x86_64}" -M "$machine" -accel tcg -cpu max
		-smp "$smp" -m "$mem" -nodefaults -no-user-config -display none -monitor none
		-serial "file:$work/console.raw" -no-reboot
		-kernel "$KVM_NESTED_KERNEL" -initrd "$work/initrd.cpio" -append "$append"
		-drive "file=$disk,format=raw,if=none,id=out,cache=unsafe" "${dev[@]}")
	printf '%q ' "${qemu[@]}" >"$outdir/cmdline"; echo >>"$outdir/cmdline"

	start=$(date +%s.%N)
	timeout -k 5 "$tmo" "${qemu[@]}" </dev/null >"$outdir/qemu.log" 2>&1
	qrc=$?
	KVM_NESTED_SECONDS=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')

	tr -d '\r' <"$work/console.raw" >"$outdir/console" 2>/dev/null
	# The output: the lines between the markers; a last line without its
	# newline ends up in front of the END marker.
	awk -v b="$token-BEGIN" -v e="$token-END" '
		index($0, b) == 1 { on = 1; next }
		on && (i = index($0, e)) { if (i > 1) print substr($0, 1, i - 1); exit }
		on { print }' "$outdir/console" >"$outdir/output"
	local status times
	status=$(awk -v e="$token-END" 'index($0, e) { on = 1; next } on && /^NESTED-EXIT [0-9]+$/ { print $2; exit }' "$outdir/console")
	times=$(awk -v b="$token-BEGIN " -v e="$token-END " '
		index($0, b) == 1 { t0 = substr($0, length(b) + 1) }
		(i = index($0, e)) { t1 = substr($0, i + length(e)) }
		END { if (t0 != "") printf "%s", t0; if (t1 != "") printf " %.2f", t1 - t0 }' "$outdir/console")
	KVM_NESTED_BOOT_SECONDS=${times%% *}
	[ "$times" = "${times#* }" ] || KVM_NESTED_SCRIPT_SECONDS=${times#* }
	if grep -q '^NESTED-EXPORT 0$' "$outdir/console"; then
		mkdir -p "$outdir/files" && tar -xf "$disk" -C "$outdir/files" 2>>"$outdir/qemu.log" ||
			KVM_NESTED_ERROR="cannot unpack the /out export"
	fi
	rm -rf "$work"
	if [ -z "$status" ]; then
		if [ $qrc = 124 ] || [ $qrc = 137 ]; then
			KVM_NESTED_ERROR="timed out after ${tmo}s"
		elif grep -q 'Kernel panic' "$outdir/console"; then
			KVM_NESTED_ERROR="guest kernel panic: $(grep -m1 'Kernel panic' "$outdir/console")"
		else
			KVM_NESTED_ERROR="no exit status from the guest (QEMU status $qrc; see $outdir/console, $outdir/qemu.log)"
		fi
		return 125
	fi
	if [ $qrc != 0 ] && [ -z "$KVM_NESTED_ERROR" ]; then
		KVM_NESTED_ERROR="the script ended but QEMU exited with status $qrc"
	fi
	return "$status"
}
