#!/bin/bash
# Benchmark (not a test): our VMM (build/kata-vmm) against
# `qemu-system-x86_64 -M microvm`, both under the same /dev/kvm, booting the
# same freestanding test guest (build/tests/testguest.elf, PVH entry; its
# very first I/O is a "T" on COM1, tests/guest/README.md).  Two figures per
# run, from bench/first_io.c (built static here):
#
#   first_io_ms  exec of the VMM to the guest's first byte on the VMM's
#                stdout (the serial console)
#   rss_kib      the VMM's resident memory outside guest RAM (its largest
#                mapping, checked on every run to be the 128 MiB memfd),
#                sampled once the guest has printed "TESTGUEST: PASS"
#                (testguest.hang=1 keeps it running) plus BENCH_HOLD_MS;
#                the VMM is then killed (SIGKILL)
#
# Goals (issue 4), on the medians: first_io kata-vmm/qemu <= 0.25; RSS
# kata-vmm <= 5 MiB and kata-vmm/qemu <= 0.25.  Prints median and p90 of
# each VMM, the ratios, and met/not met for each goal.  Exit status 0
# whether or not the goals are met; non-zero only when something failed to
# run (the failing run's output is printed).
#
# Where it runs: this machine has no usable /dev/kvm, so everything runs in
# ONE boot of a nested KVM host (tests/lib/kvm_nested.sh: our kvmhost
# kernel in QEMU TCG with -cpu max, which emulates AMD SVM).  Both VMMs run
# there, interleaved (kata-vmm, qemu, kata-vmm, qemu, ...), BENCH_WARMUP
# untimed rounds first.  Absolute times under nested KVM in TCG are far
# from bare metal (every VM exit is emulated); the ratios are the point.
#
# The two command lines (in the nested host; GUEST=/t/testguest.elf):
#   kata-vmm --kernel GUEST --console-fd 1 --memory 128 --cmdline testguest.hang=1
#   qemu-system-x86_64 -L /usr/share/qemu -M microvm,accel=kvm,acpi=off,memory-backend=ram
#       -object memory-backend-memfd,id=ram,size=128M -cpu host -m 128 -smp 1
#       -nodefaults -no-user-config -nographic -serial stdio -kernel GUEST
#       -append testguest.hang=1 -device isa-debug-exit,iobase=0xf4,iosize=4
# QEMU gets memfd guest RAM like kata-vmm's, for like-with-like and
# because the nested host's kernel has no /proc/PID/smaps
# (CONFIG_PROC_PAGE_MONITOR is off): first_io then takes VmRSS minus the
# resident pages of the guest RAM memfd (mincore through
# /proc/PID/map_files), which needs file-backed guest RAM.  That kernel
# (6.1) folds each thread's RSS counts into VmRSS only every 64 page
# faults, so rss_kib can read a little low; peak_kib (ru_maxrss at the
# SIGKILL, exact, minus guest RAM; or an earlier peak when higher) is
# printed next to it as an upper bound.  qboot.rom and pvh.bin are copied
# into the nested host for QEMU (microvm's firmware, PVH loader).
#
#   bench/vmm_vs_qemu.sh                  BENCH_N rounds (default 10)
#   BENCH_N=20 bench/vmm_vs_qemu.sh
#
# Environment:
#   BENCH_N          timed rounds (default 10)
#   BENCH_WARMUP     untimed rounds first (default 1)
#   BENCH_ONLY       comma-separated subset of kata-vmm,qemu (default both)
#   BENCH_HOLD_MS    ms between the guest's verdict and the RSS sample
#                    (default 200)
#   BENCH_TIMEOUT    seconds before one run counts as hung (default 60)
#   BENCH_QEMU_CPU   QEMU's -cpu (default host; max and
#                    max,-arch-capabilities also work under nested SVM)
#   BENCH_VERBOSE=1  print each run's raw line, and the largest mappings of
#                    the first timed run of each VMM
#   KR_BUILD         build dir of kata-vmm (default build)
#   QEMU             the QEMU binary copied into the nested host (default
#                    qemu-system-x86_64); the outer QEMU is KVM_NESTED_QEMU
#   KVM_NESTED_*     see tests/lib/kvm_nested.sh (KVM_NESTED_TIMEOUT
#                    defaults here to 300 s + 20 s per round)
#
# Needs gcc with a static libc, qemu-system-x86_64, cpio, busybox (the
# nested host's set-up installs busybox-static as root), the kvmhost kernel
# (built and cached on first use, about 18 minutes).  Skips (exit 0) when
# the nested host cannot run on this machine.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
N=${BENCH_N:-10}
WARMUP=${BENCH_WARMUP:-1}
ONLY=${BENCH_ONLY:-kata-vmm,qemu}
HOLD=${BENCH_HOLD_MS:-200}
TMO=${BENCH_TIMEOUT:-60}
QEMU_CPU=${BENCH_QEMU_CPU:-host}
VERBOSE=${BENCH_VERBOSE:-0}
BUILD=${KR_BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$root/$BUILD
VMM=$BUILD/kata-vmm
GUEST=$root/build/tests/testguest.elf	# never sanitized: always in build/
QEMU=${QEMU:-qemu-system-x86_64}
MEM=128	# MiB of guest RAM for both
me=vmm_vs_qemu

die() { echo "$me: $*" >&2; exit 1; }

bench_args kata-vmm qemu
[[ $HOLD =~ ^[0-9]+$ ]] || die "BENCH_HOLD_MS=$HOLD: expected an integer"
[[ $TMO =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT=$TMO: expected a positive integer"
[[ $QEMU_CPU =~ ^[A-Za-z0-9_.,+=-]+$ ]] || die "BENCH_QEMU_CPU=$QEMU_CPU: not a -cpu value"
[[ $VERBOSE =~ ^[01]$ ]] || die "BENCH_VERBOSE=$VERBOSE: expected 0 or 1"

want kata-vmm && [[ ! -x $VMM ]] && die "$VMM is not built yet (make), or run BENCH_ONLY=qemu"
[[ -r $GUEST ]] || die "$GUEST is not built yet (make build/tests/testguest.elf)"
command -v gcc >/dev/null || die "gcc not found"

. "$root/tests/lib/kvm_nested.sh"
rc=0
kvm_nested_setup || rc=$?
case $rc in
0) ;;
1) echo "$me: SKIP: nested KVM: $KVM_NESTED_REASON"; exit 0 ;;
*) [[ -n $KVM_NESTED_LOG ]] && tail -20 "$KVM_NESTED_LOG" >&2
   die "nested KVM set-up failed: $KVM_NESTED_REASON" ;;
esac

# ---- temp dir and clean-up ------------------------------------------------------
T=$(mktemp -d /tmp/kr-bench-vmm.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- inputs: first_io, the files for the nested host -----------------------------
gcc -static -O2 -o "$T/first_io" "$here/first_io.c" 2>"$T/gcc.log" || {
	cat "$T/gcc.log" >&2; die "gcc -static bench/first_io.c failed (apt-get install libc6-dev)"; }
files=("$T/first_io" "$GUEST")
if want kata-vmm; then
	# A copy: a rebuild during the run cannot change the binary under test.
	cp "$VMM" "$T/kata-vmm"
	files+=("$T/kata-vmm")
fi
if want qemu; then
	qemu_bin=$(command -v "$QEMU") || die "$QEMU not found (apt-get install qemu-system-x86, or QEMU=PATH)"
	# QEMU looks for its firmware in BINDIR/../share/qemu, then its
	# configured data dir; -L names the place in the nested host.
	datadir=
	for d in "$(dirname "$(readlink -f "$qemu_bin")")/../share/qemu" /usr/share/qemu; do
		[[ -r $d/qboot.rom ]] && { datadir=$(cd "$d" && pwd); break; }
	done
	[[ -n $datadir ]] || die "qboot.rom (QEMU's microvm firmware) not found next to $qemu_bin or in /usr/share/qemu"
	files+=("$qemu_bin=/t/qemu-system-x86_64")
	for f in qboot.rom bios-microvm.bin pvh.bin; do
		if [[ -r $datadir/$f ]]; then
			files+=("$(readlink -f "$datadir/$f")=/usr/share/qemu/$f")
		fi
	done
fi

guest_cmdline=testguest.hang=1
vmm_cmd="kata-vmm --kernel /t/testguest.elf --console-fd 1 --memory $MEM --cmdline $guest_cmdline"
qemu_cmd="qemu-system-x86_64 -L /usr/share/qemu -M microvm,accel=kvm,acpi=off,memory-backend=ram"
qemu_cmd+=" -object memory-backend-memfd,id=ram,size=${MEM}M -cpu $QEMU_CPU -m $MEM -smp 1"
qemu_cmd+=" -nodefaults -no-user-config -nographic -serial stdio -kernel /t/testguest.elf"
qemu_cmd+=" -append $guest_cmdline -device isa-debug-exit,iobase=0xf4,iosize=4"

# ---- the script the nested host runs -------------------------------------------------
# It prints INFO lines, then per run "RUN RT ROUND rc=RC <first_io's line>"
# and the run's stderr as "ERR RT ROUND ..." lines (first_io's --maps list,
# the VMM's own messages).  It stops at the first run that fails.
{
	printf 'RUNTIMES="%s" ROUNDS=%d HOLD=%d TMO=%d VERBOSE=%d WARMUP=%d\n' \
		"${runtimes[*]}" "$((WARMUP + N))" "$HOLD" "$TMO" "$VERBOSE" "$WARMUP"
	printf 'VMM_CMD="%s"\nQEMU_CMD="%s"\n' "$vmm_cmd" "$qemu_cmd"
	cat <<-'EOF'
	echo "INFO nested host: kernel $(uname -r), $(nproc) CPU(s), $(grep -o -m1 -w -e svm -e vmx /proc/cpuinfo || echo no-svm), $(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo)"
	case " $RUNTIMES " in *" qemu "*) echo "INFO in it, qemu-system-x86_64 --version: $(qemu-system-x86_64 --version | head -n1)" ;; esac
	case " $RUNTIMES " in *" kata-vmm "*) echo "INFO in it, kata-vmm --version: $(kata-vmm --version 2>&1 | head -n1)" ;; esac
	[ -c /dev/kvm ] || { echo "INFO no /dev/kvm"; exit 1; }
	r=0
	while [ $r -lt $ROUNDS ]; do
		for rt in $RUNTIMES; do
			maps=0
			[ "$VERBOSE" = 1 ] && [ $r = "$WARMUP" ] && maps=12
			if [ $rt = kata-vmm ]; then cmd=$VMM_CMD; else cmd=$QEMU_CMD; fi
			# shellcheck disable=SC2086 # cmd: words without spaces
			line=$(timeout -s KILL "$TMO" first_io --until 'TESTGUEST: PASS' --hold-ms "$HOLD" \
				--kill --maps $maps -- $cmd 2>/tmp/err)
			rc=$?
			echo "RUN $rt $r rc=$rc $line"
			sed "s/^/ERR $rt $r /" /tmp/err
			[ $rc = 0 ] || exit 1
		done
		r=$((r + 1))
	done
	EOF
} >"$T/nested.sh"

# ---- the run -------------------------------------------------------------------------
echo "# $me: exec to the guest's first I/O, and RSS outside guest RAM: kata-vmm vs qemu -M microvm"
echo "# UNDER NESTED KVM INSIDE QEMU TCG (no usable /dev/kvm here): absolute times are far"
echo "# from bare metal, every guest exit is emulated; the ratios (same run, same /dev/kvm,"
echo "# interleaved) are the point."
echo "# host: kernel $(uname -r), $(nproc) CPUs; outer $("${KVM_NESTED_QEMU:-qemu-system-x86_64}" --version | head -n1), TCG -cpu max (emulated SVM)"
echo "# nested host kernel: $KVM_NESTED_KERNEL"
echo "# guest: $GUEST (sha256 $(sha256sum "$GUEST" | cut -c1-16)), PVH entry, cmdline $guest_cmdline"
want kata-vmm && echo "# kata-vmm: $VMM (sha256 $(sha256sum "$T/kata-vmm" | cut -c1-16), run from a copy): $vmm_cmd"
want qemu && echo "# qemu: $qemu_bin, data files from $datadir: $qemu_cmd"
echo "# first_io --until 'TESTGUEST: PASS' --hold-ms $HOLD --kill -- CMD (bench/first_io.c, static)"
echo "# $N timed rounds, $WARMUP warm-up round(s), one nested boot, order: ${runtimes[*]} (alternating)"

export KVM_NESTED_TIMEOUT=${KVM_NESTED_TIMEOUT:-$((300 + (N + WARMUP) * 20))}
rc=0
kvm_nested_run "$T/nested" "$T/nested.sh" "${files[@]}" || rc=$?
out=$T/nested/output
fail_nested() {
	echo "$me: $*" >&2
	[[ -n $KVM_NESTED_ERROR ]] && echo "--- harness: $KVM_NESTED_ERROR" >&2
	echo "--- nested host output (last 40 lines):" >&2; tail -n 40 "$out" >&2 2>/dev/null || true
	echo "--- nested host console (last 20 lines):" >&2; tail -n 20 "$T/nested/console" >&2 2>/dev/null || true
	exit 1
}
((rc == 0)) || fail_nested "the nested run failed (status $rc)"
echo "# nested boot: QEMU ${KVM_NESTED_SECONDS}s in all, its kernel to the script ${KVM_NESTED_BOOT_SECONDS:-?}s, the runs ${KVM_NESTED_SCRIPT_SECONDS:-?}s"
sed -n 's/^INFO /# /p' "$out"

# ---- checks and figures ------------------------------------------------------------------
re='^RUN ([a-z-]+) ([0-9]+) rc=0 first_io_ms=([0-9.]+) rss_kib=(-?[0-9]+) total_ms=[0-9.]+ status=([0-9]+) largest_kib=(-?[0-9]+) until_ms=([0-9.]+) method=([a-z-]+) ram_kib=(-?[0-9]+) maxrss_kib=(-?[0-9]+) largest=(.*)$'
declare -A first=() verdict=() rss=() peak=() cnt=() method=()
runs=0
while IFS= read -r line; do
	[[ $line == RUN\ * ]] || continue
	[[ $line =~ $re ]] || fail_nested "unexpected run line: $line"
	rt=${BASH_REMATCH[1]} r=${BASH_REMATCH[2]}
	f=${BASH_REMATCH[3]} rs=${BASH_REMATCH[4]} st=${BASH_REMATCH[5]} lk=${BASH_REMATCH[6]}
	u=${BASH_REMATCH[7]} m=${BASH_REMATCH[8]} ram=${BASH_REMATCH[9]} mx=${BASH_REMATCH[10]}
	name=${BASH_REMATCH[11]}
	# status 137: our SIGKILL; anything else: the VMM ended by itself first.
	((st == 137)) || fail_nested "$rt round $r: the VMM exited (status $st) before it was killed: $line"
	# Guest RAM must be what first_io subtracted: the 128 MiB memfd.
	if ((lk != MEM * 1024)) || [[ $name != /memfd:* ]]; then
		fail_nested "$rt round $r: the largest mapping is not the ${MEM} MiB guest RAM memfd ($lk KiB, $name): $line"
	fi
	((rs >= 0 && ram >= 0 && mx >= 0)) || fail_nested "$rt round $r: RSS not measured: $line"
	((VERBOSE)) && echo "# raw: $line"
	runs=$((runs + 1))
	((r < WARMUP)) && continue
	first[$rt]+="$f " verdict[$rt]+="$u " rss[$rt]+="$rs " peak[$rt]+="$((mx - ram)) "
	method[$rt]=$m
done <"$out"
((runs == (N + WARMUP) * ${#runtimes[@]})) ||
	fail_nested "expected $(((N + WARMUP) * ${#runtimes[@]})) runs, got $runs"
if ((VERBOSE)); then
	echo "# largest mappings, first timed run of each (first_io --maps 12):"
	grep "^ERR [a-z-]* $WARMUP " "$out" | sed 's/^ERR /#   /' || true
fi

declare -A med=() p90=()
echo
printf '%-10s %-34s %10s %10s %5s\n' "" "" median p90 runs
for rt in "${runtimes[@]}"; do
	read -r "med[$rt.first]" "p90[$rt.first]" "cnt[$rt]" < <(stats "${first[$rt]}" 1)
	read -r "med[$rt.verdict]" "p90[$rt.verdict]" _ < <(stats "${verdict[$rt]}" 1)
	read -r "med[$rt.rss]" "p90[$rt.rss]" _ < <(stats "${rss[$rt]}" 1)
	read -r "med[$rt.peak]" "p90[$rt.peak]" _ < <(stats "${peak[$rt]}" 1)
	printf '%-10s %-34s %10s %10s %5s\n' "$rt" "first_io_ms (exec to first byte)" "${med[$rt.first]}" "${p90[$rt.first]}" "${cnt[$rt]}"
	printf '%-10s %-34s %10s %10s %5s\n' "" "verdict_ms (exec to PASS, info)" "${med[$rt.verdict]}" "${p90[$rt.verdict]}" "${cnt[$rt]}"
	printf '%-10s %-34s %10s %10s %5s\n' "" "rss_kib (outside guest RAM)" "${med[$rt.rss]}" "${p90[$rt.rss]}" "${cnt[$rt]}"
	printf '%-10s %-34s %10s %10s %5s\n' "" "peak_kib (upper bound, at kill)" "${med[$rt.peak]}" "${p90[$rt.peak]}" "${cnt[$rt]}"
done
echo "(RSS method: $(for rt in "${runtimes[@]}"; do printf '%s %s; ' "$rt" "${method[$rt]}"; done)mincore = VmRSS - guest RAM memfd resident)"

# goal LABEL A B LIMIT: "LABEL A/B (goal <= LIMIT: met|not met)", A/B to
# two decimals (B 1: A itself); the check uses the unrounded value.
goal() {
	awk -v l="$1" -v a="$2" -v b="$3" -v g="$4" \
		'BEGIN { printf "%s%.2f (goal <= %s: %s)\n", l, a / b, g, (a / b <= g) ? "met" : "not met" }'
}
echo
if want kata-vmm && want qemu; then
	echo "kata-vmm/qemu first_io_ms: median $(ratio "${med[kata-vmm.first]}" "${med[qemu.first]}"), p90 $(ratio "${p90[kata-vmm.first]}" "${p90[qemu.first]}")"
	echo "kata-vmm/qemu rss_kib:     median $(ratio "${med[kata-vmm.rss]}" "${med[qemu.rss]}"), p90 $(ratio "${p90[kata-vmm.rss]}" "${p90[qemu.rss]}")"
	echo "kata-vmm/qemu peak_kib:    median $(ratio "${med[kata-vmm.peak]}" "${med[qemu.peak]}") (upper bounds)"
	echo
	goal "time: kata-vmm/qemu first_io=" "${med[kata-vmm.first]}" "${med[qemu.first]}" 0.25
	goal "rss:  kata-vmm/qemu=" "${med[kata-vmm.rss]}" "${med[qemu.rss]}" 0.25
	goal "rss:  kata-vmm MiB=" "${med[kata-vmm.rss]}" 1024 5
	goal "rss upper bound: kata-vmm/qemu peak=" "${med[kata-vmm.peak]}" "${med[qemu.peak]}" 0.25
	goal "rss upper bound: kata-vmm peak MiB=" "${med[kata-vmm.peak]}" 1024 5
else
	echo "kata-vmm/qemu=n/a (BENCH_ONLY=$ONLY) (goals: first_io <= 0.25, rss <= 0.25 and <= 5 MiB)"
	if want kata-vmm; then goal "rss:  kata-vmm MiB=" "${med[kata-vmm.rss]}" 1024 5; fi
fi
exit 0
