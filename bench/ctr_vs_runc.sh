#!/bin/bash
# Benchmark (not a test): a container through containerd with our shim
# (io.containerd.kata-run.v2) against the same through runc
# (io.containerd.runc.v2), and what the shim path costs on top of the VM it
# needs.  Timed from exec to exit, interleaved round-robin (the order
# rotates each round) so machine drift hits all alike:
#
#   floor  (A) a bare qemu-system-x86_64 boot of the guest kernel whose
#              /init (bench/floor_init.c) powers the VM off at once: the
#              same floor as bench/kata_run_vs_qemu.sh (q35, TCG or KVM as
#              the libvirt backend picks it, 512 MiB memfd RAM, 1 vCPU, no
#              virtio devices, no libvirt)
#   kata   (B) ctr run --rm --runtime io.containerd.kata-run.v2 IMG ID true
#   runc   (C) ctr run --rm --runtime io.containerd.runc.v2 IMG ID true
#
# IMG is the busybox image of tests/lib/oci_image.sh, imported into a
# private containerd (scripts/containerd-setup.sh, in a temp dir, its log
# level info) that this script starts and stops.  Each `ctr run` gets a
# fresh id.  After each run, untimed, the script waits until that run's
# shim daemon has exited (so a VM still being torn down cannot slow the
# next run) and reports how long the daemon outlived ctr.  Prints median and p90 of each, B/C, and last
#
#   overhead over floor = X.XX s (goal <= 0.3 s)
#
# = median(B) - median(A): everything the containerd path adds to booting
# and powering off the VM (containerd, ctr, the shim's start/daemon/delete,
# libvirt, virtio devices, the agent, the container).  Exit status 0
# whether or not the goal is met; non-zero only when something failed to
# run (the failing command and its output are printed).
#
#   bench/ctr_vs_runc.sh                  BENCH_N rounds (default 10)
#   BENCH_N=5 bench/ctr_vs_runc.sh
#
# Environment:
#   BENCH_N        timed rounds (default 10)
#   BENCH_WARMUP   untimed rounds first (default 1)
#   BENCH_ONLY     comma-separated subset of floor,kata,runc (default all)
#   BENCH_TIMEOUT  seconds before one run counts as hung (default 300)
#   KR_BUILD       build dir holding containerd-shim-kata-run-v2 (default build)
#   KR_ACCEL       tcg|kvm for the floor (default: as the libvirt backend
#                  picks it: tcg when /dev/kvm is missing or PVM, else kvm)
#
# Needs root, containerd + ctr (apt-get install containerd), runc,
# qemu-system-x86_64, gcc with a static libc, cpio, gzip, busybox-static.
# Cleans up on any exit: tasks and containers removed, containerd stopped,
# leftover shims of this containerd killed, `kata-run cleanup` for every id.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
N=${BENCH_N:-10}
WARMUP=${BENCH_WARMUP:-1}
ONLY=${BENCH_ONLY:-floor,kata,runc}
TMO=${BENCH_TIMEOUT:-300}
BUILD=${KR_BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$root/$BUILD
QEMU=${QEMU:-qemu-system-x86_64}
RT_KATA=io.containerd.kata-run.v2
RT_RUNC=io.containerd.runc.v2
IMG=docker.io/library/kr-busybox:latest
me=ctr_vs_runc

die() { echo "$me: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (containerd, runc, the VM)"

bench_args floor kata runc
uses_ctr() { want kata || want runc; }

if (want floor || want kata) && ! command -v "$QEMU" >/dev/null; then
	echo "$me: SKIP: $QEMU not installed (apt-get install qemu-system-x86)"
	exit 0
fi
if want kata && [[ ! -x $BUILD/containerd-shim-kata-run-v2 ]]; then
	die "$BUILD/containerd-shim-kata-run-v2 is not built yet (make), or run BENCH_ONLY=floor,runc"
fi
if want runc && ! command -v containerd-shim-runc-v2 >/dev/null; then
	die "containerd-shim-runc-v2 not found (apt-get install containerd runc)"
fi

# ---- temp dir and clean-up ------------------------------------------------------
T=$(mktemp -d /tmp/kr-bench-ctr.XXXXXX)
D=$T/cd
SOCK=$D/containerd.sock
ids=()
kata_ids=()
child=
our_shims() { pgrep -f -- "containerd-shim-.* -address $SOCK( |\$)" || true; }
# wait_gone SECONDS PID...: until none of the PIDs exists (a zombie still
# does: kata-run cleanup counts a zombie owner as alive; with ZOMBIE_OK=1
# a zombie counts as gone: this host's init reaps orphans late).
wait_gone() {
	local secs=$1 i p left st
	shift
	for ((i = 0; i < secs * 20; i++)); do
		left=
		for p; do
			st=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) || continue
			[[ ${ZOMBIE_OK:-0} == 1 && $st == Z ]] || left=1
		done
		[[ -z $left ]] && return 0
		sleep 0.05
	done
	return 1
}
cleanup() {
	local rc=$? id p
	trap - EXIT INT TERM
	if [[ -n $child ]]; then
		kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
		sleep 1
		kill -KILL -- "-$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	if uses_ctr && [[ -d $D ]]; then
		if "$root/scripts/containerd-setup.sh" status "$D" 2>/dev/null; then
			for id in "${ids[@]}"; do
				timeout 30 ctr -a "$SOCK" task kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
				timeout 60 ctr -a "$SOCK" task rm -f "$id" >/dev/null 2>&1 || true
				timeout 30 ctr -a "$SOCK" containers rm "$id" >/dev/null 2>&1 || true
			done
		fi
		# shims still ending their VM: give them time (see also after_run)
		# shellcheck disable=SC2046
		wait_gone 20 $(our_shims) || true
		"$root/scripts/containerd-setup.sh" stop "$D" || { ((rc)) || rc=1; }
		for p in $(our_shims); do
			echo "$me: killing a shim left behind: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&2
			kill -KILL "$p" 2>/dev/null || true
			wait_gone 10 "$p" || true
		done
		# their sockets (/run/containerd/s/sha256(address/ns/id)) if stale
		for id in "${ids[@]}"; do
			p=/run/containerd/s/$(printf '%s' "$SOCK/default/$id" | sha256sum | cut -d' ' -f1)
			[[ -S $p ]] && ! grep -qF "$p" /proc/net/unix && rm -f "$p" || true
		done
	fi
	if ((${#kata_ids[@]})) && [[ -x $BUILD/kata-run ]]; then
		timeout 120 "$BUILD/kata-run" cleanup "${kata_ids[@]}" >"$T/cleanup.out" 2>&1 ||
			{ echo "$me: kata-run cleanup failed:" >&2; cat "$T/cleanup.out" >&2; ((rc)) || rc=1; }
	fi
	if grep -qF "$T" /proc/self/mountinfo; then
		echo "$me: mounts left under $T, not removing it" >&2
		((rc)) || rc=1
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- inputs: floor, containerd, image ------------------------------------------
if want floor; then
	kernel=$("$root/guest-kernel-config/build.sh" --print-path 2>"$T/kernel.log") || {
		tail -20 "$T/kernel.log" >&2; die "guest kernel build failed"; }
	floor_prepare "$kernel" "$QEMU"
fi

shim_dir=$BUILD
if want kata; then
	"$root/scripts/libvirt-setup.sh" --no-daemons >/dev/null ||
		die "scripts/libvirt-setup.sh --no-daemons failed"
	# containerd runs a copy of the shim (a rebuild during the run cannot
	# change the binary under test) with our guest next to it, where the
	# shim looks for it: the kernel, and a copy of the initramfs.
	kernel=${kernel:-$("$root/guest-kernel-config/build.sh" --print-path 2>"$T/kernel.log")} || {
		tail -20 "$T/kernel.log" >&2; die "guest kernel build failed"; }
	make -s -C "$root" build/kata-initramfs.cpio.gz >"$T/make.log" 2>&1 || {
		cat "$T/make.log" >&2; die "make build/kata-initramfs.cpio.gz failed"; }
	shim_dir=$T/shim
	mkdir -p "$shim_dir"
	cp "$BUILD/containerd-shim-kata-run-v2" "$root/build/kata-initramfs.cpio.gz" "$shim_dir/"
	ln -s "$kernel" "$shim_dir/bzImage"
fi
if uses_ctr; then
	KR_BUILD=$shim_dir KR_CONTAINERD_LOG_LEVEL=info "$root/scripts/containerd-setup.sh" start "$D" ||
		die "scripts/containerd-setup.sh start $D failed"
	# shellcheck source=../tests/lib/oci_image.sh
	. "$root/tests/lib/oci_image.sh"
	make_busybox_image "$T/image.tar" "$IMG" || die "building the busybox image failed"
	timeout 120 ctr -a "$SOCK" images import "$T/image.tar" >"$T/import.log" 2>&1 || {
		cat "$T/import.log" >&2; die "ctr images import failed"; }
fi

# ---- the runs ----------------------------------------------------------------------
cmd_kata() { cmd=(ctr -a "$SOCK" run --rm --runtime "$RT_KATA" "$IMG" "$1" true); }
cmd_runc() { cmd=(ctr -a "$SOCK" run --rm --runtime "$RT_RUNC" "$IMG" "$1" true); }
check_kata() { [[ ! -s $T/out ]] || why="unexpected output on stdout"; }
check_runc() { check_kata; }

run_started() {
	[[ $1 == floor ]] || ids+=("$2")
	[[ $1 == kata ]] && kata_ids+=("$2")
	return 0
}
run_failed() {
	[[ $1 != floor && -f $D/containerd.log ]] || return 0
	echo "--- containerd.log:" >&2; tail -30 "$D/containerd.log" | cut -c1-400 >&2
}
run_done() { after_run; }
# Untimed, after each run: wait until the run's shim daemon (and with it
# its VM) is gone, so that it cannot slow the next timed run; linger (ms)
# is how long that took after ctr exited.
after_run() {
	local t0 shims
	linger=0
	uses_ctr || return 0
	t0=${EPOCHREALTIME//[^0-9]/}
	shims=$(our_shims)
	# shellcheck disable=SC2086
	[[ -z $shims ]] || ZOMBIE_OK=1 wait_gone 60 $shims ||
		{ echo "$me: a shim did not exit within 60 s after ctr run --rm returned:" >&2
		  for p in $shims; do tr '\0' ' ' <"/proc/$p/cmdline" >&2 2>/dev/null; echo >&2; done
		  exit 1; }
	linger=$(((${EPOCHREALTIME//[^0-9]/} - t0) / 1000))
}

echo "# $me: exec-to-exit wall time of ctr run --rm IMG ID true"
echo "# host: kernel $(uname -r), $(nproc) CPUs; $("$QEMU" --version 2>/dev/null | head -n1 || echo "no $QEMU")"
want floor && echo "# floor: ${floor_cmd[*]@Q}"
uses_ctr && echo "# containerd $(containerd --version | awk '{print $3}') (private, $D), image $IMG"
want kata && echo "# kata: $BUILD/containerd-shim-kata-run-v2 (sha256 $(sha256sum "$shim_dir/containerd-shim-kata-run-v2" | cut -c1-16), run from a copy; guest: $kernel, initramfs sha256 $(sha256sum "$shim_dir/kata-initramfs.cpio.gz" | cut -c1-16))"
want runc && echo "# runc: $(runc --version 2>/dev/null | head -n1)"
echo "# $N timed rounds, $WARMUP warm-up round(s), order rotating: ${runtimes[*]}"

declare -A samples=() linger_samples=()
k=${#runtimes[@]}
for ((i = -WARMUP; i < N; i++)); do
	for ((j = 0; j < k; j++)); do
		rt=${runtimes[(i + WARMUP + j) % k]}
		time_one "$rt" "cb$$-$rt-$((i + WARMUP))"
		((i < 0)) && continue
		samples[$rt]+="$elapsed "
		linger_samples[$rt]+="$linger "
	done
done


declare -A med=() p90=() cnt=()
declare -A label=([floor]="A floor (bare qemu boot+poweroff)" [kata]="B ctr run, kata-run shim" [runc]="C ctr run, runc shim")
echo
printf '%-36s %10s %10s %5s\n' "" median_ms p90_ms runs
for rt in "${runtimes[@]}"; do
	read -r "med[$rt]" "p90[$rt]" "cnt[$rt]" < <(stats "${samples[$rt]}" 1000)
	printf '%-36s %10s %10s %5s\n' "${label[$rt]}" "${med[$rt]}" "${p90[$rt]}" "${cnt[$rt]}"
done
echo
for rt in kata runc; do
	want "$rt" || continue
	read -r lm lp _ < <(stats "${linger_samples[$rt]}" 1)
	printf '%s: shim daemon still running after ctr exited: median %s ms, p90 %s ms (untimed)\n' \
		"${label[$rt]}" "$lm" "$lp"
done
echo
if want kata && want runc; then
	echo "B/C kata-run shim/runc shim: median $(ratio "${med[kata]}" "${med[runc]}"), p90 $(ratio "${p90[kata]}" "${p90[runc]}")"
	echo "B-C: median $(awk -v a="${med[kata]}" -v b="${med[runc]}" 'BEGIN { printf "%.1f", a - b }') ms"
fi
if want kata && want floor; then
	echo "B/A kata-run shim/floor: median $(ratio "${med[kata]}" "${med[floor]}")"
	echo "overhead over floor = $(awk -v a="${med[kata]}" -v b="${med[floor]}" 'BEGIN { printf "%.2f", (a - b) / 1000 }') s (goal <= 0.3 s)"
else
	echo "overhead over floor = n/a (BENCH_ONLY=$ONLY) (goal <= 0.3 s)"
fi
