#!/bin/bash
# Benchmark (not a test): what kata-run costs on top of the VM it needs.
# Three things, timed from exec to exit, interleaved round-robin (the order
# rotates each round: A B C, B C A, C A B, ...) so machine drift hits all
# of them alike:
#
#   floor  (A) a bare qemu-system-x86_64 boot of the guest kernel with a
#              tiny initramfs whose /init (bench/floor_init.c) powers the VM
#              off at once: "VM created + kernel reaches init + VM gone",
#              with the machine libvirt builds for kata-run (q35, TCG or
#              KVM as kata-run would pick, cpu max, 512 MiB memfd-backed
#              shared RAM as the domain's <memoryBacking>, 1 vCPU, and
#              "console=ttyS0 panic=-1 quiet" from the base kernel command
#              line of hypervisor/hypervisor.c, without the agent's keys).
#              No virtio devices, no libvirt: those are kata-run's cost.
#   kata   (B) build/kata-run run --id ID --timings BUNDLE with a busybox
#              bundle running `true` (examples/hello/make-bundle.sh, args
#              set to ["true"]) and a config file naming our kernel and
#              initramfs.  Its `timings:` line on stderr gives the
#              breakdown (cumulative marks, ms since kata-run started).
#   runc   (C) runc run of the same bundle, a fresh id each time.
#
# Prints median and p90 of each, the ratios kata/floor (goal <= 1.25) and
# kata/runc, the median of each kata-run mark and of the phase between
# marks, the number of timed runs, and last `kata-run/floor=X.XX (goal <=
# 1.25)`.  Exit status 0 whether or not the goal is met; non-zero only when
# something failed to run (the failing command and its output are printed).
#
#   bench/kata_run_vs_qemu.sh                 BENCH_N rounds (default 10)
#   BENCH_N=5 bench/kata_run_vs_qemu.sh
#
# Environment:
#   BENCH_N        timed rounds (default 10)
#   BENCH_WARMUP   untimed rounds first (default 1: page cache, libvirt)
#   BENCH_ONLY     comma-separated subset of floor,kata,runc (default all
#                  three), for debugging, e.g. BENCH_ONLY=floor,runc
#   BENCH_TIMEOUT  seconds before one run counts as hung (default 300)
#   KATA_RUN       the binary (default build/kata-run; the run uses a copy
#                  made at the start, so a rebuild meanwhile does not matter)
#   KR_ACCEL       tcg|kvm for the floor (default: as kata-run's libvirt
#                  backend picks it, hv_detect_accel(): tcg when /dev/kvm
#                  is missing or PVM, else kvm)
#   RUNC           (default /usr/sbin/runc)
#
# Needs root (runc, kata-run, mknod for the floor initramfs), gcc with a
# static libc, cpio, gzip, python3, busybox-static.  Skips (exit 0) when
# qemu-system-x86_64 is not installed.  Cleans up its temp dir and runs
# `kata-run cleanup ID...` for every id it used, on any exit.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
N=${BENCH_N:-10}
WARMUP=${BENCH_WARMUP:-1}
ONLY=${BENCH_ONLY:-floor,kata,runc}
TMO=${BENCH_TIMEOUT:-300}
KATA_RUN=${KATA_RUN:-$root/build/kata-run}
RUNC=${RUNC:-/usr/sbin/runc}
QEMU=${QEMU:-qemu-system-x86_64}
me=kata_run_vs_qemu

die() { echo "$me: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (runc, kata-run and mknod for the floor initramfs)"

bench_args floor kata runc

if (want floor || want kata) && ! command -v "$QEMU" >/dev/null; then
	echo "$me: SKIP: $QEMU not installed (apt-get install qemu-system-x86)"
	exit 0
fi
if want runc && [[ ! -x $RUNC ]]; then
	die "$RUNC not found (apt-get install runc, or RUNC=PATH, or BENCH_ONLY without runc)"
fi
if want kata && [[ ! -x $KATA_RUN ]]; then
	die "$KATA_RUN is not built yet (make), or run BENCH_ONLY=floor,runc"
fi

# ---- temp dir and clean-up ------------------------------------------------------
T=$(mktemp -d /tmp/kr-bench-vm.XXXXXX)
kata_ids=()
child=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# A run cut short by a signal: end its process group (timeout(1) made
	# one), then let kata-run remove whatever VM it left.
	if [[ -n $child ]]; then
		kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	if ((${#kata_ids[@]})); then
		"$KATA_RUN" --config "$T/config.toml" cleanup "${kata_ids[@]}" \
			>"$T/cleanup.out" 2>&1 ||
			{ echo "$me: kata-run cleanup ${kata_ids[*]} failed:" >&2
			  cat "$T/cleanup.out" >&2; ((rc)) || rc=1; }
	fi
	if want runc && [[ -d $T/runc-root ]]; then
		local id
		for id in $("$RUNC" --root "$T/runc-root" list -q 2>/dev/null); do
			"$RUNC" --root "$T/runc-root" delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- inputs: kernel, initramfs, floor initramfs, bundle, config -------------------
if want floor || want kata; then
	kernel=$("$root/guest-kernel-config/build.sh" --print-path 2>"$T/kernel.log") || {
		tail -20 "$T/kernel.log" >&2; die "guest kernel build failed"; }
fi
if want kata; then
	# A copy: a rebuild of build/kata-run during the run cannot change
	# (or briefly remove) the binary under test.
	cp "$KATA_RUN" "$T/kata-run"
	kata_src="$KATA_RUN (sha256 $(sha256sum "$T/kata-run" | cut -c1-16), run from a copy)"
	KATA_RUN=$T/kata-run
	make -s -C "$root" build/kata-initramfs.cpio.gz >"$T/make.log" 2>&1 || {
		cat "$T/make.log" >&2; die "make build/kata-initramfs.cpio.gz failed"; }
	initrd=$root/build/kata-initramfs.cpio.gz
	printf 'kernel = "%s"\ninitrd = "%s"\n' "$kernel" "$initrd" >"$T/config.toml"
fi

want floor && floor_prepare "$kernel" "$QEMU"

if want kata || want runc; then
	"$root/examples/hello/make-bundle.sh" "$T/bundle" >/dev/null
	python3 - "$T/bundle/config.json" <<-'PY'
	import json, sys
	p = sys.argv[1]
	c = json.load(open(p))
	c["process"]["args"] = ["true"]
	json.dump(c, open(p, "w"), indent=2)
	PY
	BUNDLE=$T/bundle
fi

# ---- the three runs ---------------------------------------------------------------
# cmd_RT ID sets cmd, the command line of one run.
cmd_kata() { cmd=("$KATA_RUN" --config "$T/config.toml" run --id "$1" --timings "$BUNDLE"); }
cmd_runc() { cmd=("$RUNC" --root "$T/runc-root" run --bundle "$BUNDLE" "$1"); }

# check_RT: after a run that exited 0, sets why when it is not a good run.
timings_re='timings: vm_created_ms=([0-9]+) init_ms=([0-9]+) agent_ready_ms=([0-9]+) container_done_ms=([0-9]+) vm_gone_ms=([0-9]+)'
marks=(vm_created init agent_ready container_done vm_gone)
last_marks=()
check_kata() {
	local line i
	line=$(grep -E "$timings_re" "$T/err" | tail -n1) || true
	if [[ ! $line =~ $timings_re ]]; then
		why="no 'timings: vm_created_ms=N init_ms=N agent_ready_ms=N container_done_ms=N vm_gone_ms=N' line on stderr"
		return
	fi
	last_marks=()
	for i in "${!marks[@]}"; do
		last_marks+=("${BASH_REMATCH[i + 1]}")
	done
}
check_runc() { :; }

run_started() { [[ $1 == kata ]] && kata_ids+=("$2"); return 0; }

echo "# $me: exec-to-exit wall time, busybox bundle running true"
echo "# host: kernel $(uname -r), $(nproc) CPUs; $("$QEMU" --version | head -n1)"
want floor && echo "# floor: ${floor_cmd[*]@Q}"
if want kata; then
	echo "# kata: $kata_src run --id ID --timings BUNDLE"
	echo "#   config: $(tr '\n' ' ' <"$T/config.toml")"
	if "$KATA_RUN" --config "$T/config.toml" check >"$T/check.out" 2>&1; then
		# Only what is not "ok" (e.g. no /dev/kvm: TCG).
		grep -v '^ok ' "$T/check.out" | sed 's/^/#   check: /' | head -20 || true
	else
		echo "# kata-run check failed (exit $?):"; sed 's/^/#   /' "$T/check.out" | head -20
	fi
fi
want runc && echo "# runc: $("$RUNC" --version | head -n1), --root in a temp dir"
echo "# $N timed rounds, $WARMUP warm-up round(s), order rotating: ${runtimes[*]}"

declare -A samples=()
declare -A mark_samples=()
k=${#runtimes[@]}
for ((i = -WARMUP; i < N; i++)); do
	for ((j = 0; j < k; j++)); do
		rt=${runtimes[(i + WARMUP + j) % k]}
		id="kb$$-$rt-$((i + WARMUP))"
		time_one "$rt" "$id"
		((i < 0)) && continue
		samples[$rt]+="$elapsed "
		if [[ $rt == kata ]]; then
			prev=0
			for m in "${!marks[@]}"; do
				v=${last_marks[m]}
				mark_samples[${marks[m]}]+="$v "
				mark_samples[d_${marks[m]}]+="$((v - prev)) "
				prev=$v
			done
			# kata-run's exit after the VM is gone, as the wall clock sees it
			mark_samples[d_exit]+="$((elapsed / 1000 - prev)) "
		fi
	done
done


declare -A med=() p90=() cnt=()
declare -A label=([floor]="A floor (bare qemu boot+poweroff)" [kata]="B kata-run run" [runc]="C runc run")
echo
printf '%-36s %10s %10s %5s\n' "" median_ms p90_ms runs
for rt in "${runtimes[@]}"; do
	read -r "med[$rt]" "p90[$rt]" "cnt[$rt]" < <(stats "${samples[$rt]}" 1000)
	printf '%-36s %10s %10s %5s\n' "${label[$rt]}" "${med[$rt]}" "${p90[$rt]}" "${cnt[$rt]}"
done

if want kata; then
	echo
	echo "B breakdown (ms since kata-run started; phase = since the previous mark), medians over ${cnt[kata]} runs:"
	printf '  %-16s %10s %10s %10s\n' mark at_median at_p90 phase_median
	for m in "${marks[@]}"; do
		read -r a ap _ < <(stats "${mark_samples[$m]}" 1)
		read -r d _ _ < <(stats "${mark_samples[d_$m]}" 1)
		printf '  %-16s %10s %10s %10s\n' "$m" "$a" "$ap" "$d"
	done
	read -r d _ _ < <(stats "${mark_samples[d_exit]}" 1)
	printf '  %-16s %10s %10s %10s\n' "(exit, wall)" "" "" "$d"
fi

echo
if want floor && want kata; then
	echo "B/A kata-run/floor: median $(ratio "${med[kata]}" "${med[floor]}"), p90 $(ratio "${p90[kata]}" "${p90[floor]}") (goal <= 1.25)"
	echo "B-A kata-run over the floor: median $(awk -v a="${med[kata]}" -v b="${med[floor]}" 'BEGIN { printf "%.1f", a - b }') ms"
fi
if want kata && want runc; then
	echo "B/C kata-run/runc:  median $(ratio "${med[kata]}" "${med[runc]}"), p90 $(ratio "${p90[kata]}" "${p90[runc]}")"
fi
if want floor && want runc; then
	echo "A/C floor/runc:     median $(ratio "${med[floor]}" "${med[runc]}")"
fi
if want floor && want kata; then
	echo "kata-run/floor=$(ratio "${med[kata]}" "${med[floor]}") (goal <= 1.25)"
else
	echo "kata-run/floor=n/a (BENCH_ONLY=$ONLY) (goal <= 1.25)"
fi
