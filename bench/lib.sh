# Shared by the benchmarks (sourced): the VM boot floor, one timed run,
# statistics.  The sourcing script defines die, sets T (its temp dir), TMO
# (seconds per run) and, for each runtime RT it times, cmd_RT ID (sets the
# array cmd) and check_RT (sets why when a run that exited 0 is no good).
# Optional hooks: run_started RT ID, run_failed RT (more diagnostics),
# run_done RT (untimed work after each good run).

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# bench_args RUNTIME...: check BENCH_N (N) and BENCH_WARMUP (WARMUP); set
# runtimes to the RUNTIMEs that BENCH_ONLY (ONLY, comma-separated) names;
# want RT then says whether RT runs.
bench_args() {
	local rt w all=" $* " list="$*"
	[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_N=$N: expected a positive integer"
	[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP=$WARMUP: expected an integer"
	runtimes=()
	for rt in "$@"; do
		[[ ,$ONLY, == *,$rt,* ]] && runtimes+=("$rt")
	done
	for w in ${ONLY//,/ }; do
		[[ $all == *" $w "* ]] || die "BENCH_ONLY: unknown '$w' (expected ${list// /, })"
	done
	((${#runtimes[@]})) || die "BENCH_ONLY=$ONLY selects nothing"
}
want() { [[ " ${runtimes[*]} " == *" $1 "* ]]; }

# floor_prepare KERNEL QEMU: the floor is a bare QEMU boot of KERNEL with an
# initramfs whose /init (floor_init.c) powers off at once, on the machine
# libvirt makes for kata-run (hypervisor/libvirt_xml.c as libvirt turns it
# into a QEMU command line: q35, cpu max (host on KVM), 512 MiB memfd
# shared RAM, 1 vCPU, ttyS0 to a file); no virtio devices: those are
# kata-run's cost.  Accel as hv_detect_accel() picks it, or KR_ACCEL.
# Sets floor_cmd.
floor_prepare() {
	local kernel=$1 qemu=$2 tool cpu
	for tool in gcc cpio gzip; do
		command -v "$tool" >/dev/null || die "$tool not found"
	done
	mkdir -p "$T/floor/dev"
	gcc -static -O2 -o "$T/floor/init" "$bench_dir/floor_init.c" 2>"$T/gcc.log" || {
		cat "$T/gcc.log" >&2; die "gcc -static bench/floor_init.c failed (apt-get install libc6-dev)"; }
	strip --strip-all "$T/floor/init" 2>/dev/null || true
	chmod 0755 "$T/floor/init"
	mknod -m 600 "$T/floor/dev/console" c 5 1
	find "$T/floor" -exec touch -h -d @0 {} +
	(cd "$T/floor" && find . -mindepth 1 -print | LC_ALL=C sort |
		cpio --quiet -o -H newc --reproducible -R 0:0) | gzip -9 -n >"$T/floor.cpio.gz"
	if [[ -z ${KR_ACCEL:-} ]]; then
		KR_ACCEL=kvm
		[[ -e /dev/kvm && ! -e /sys/module/kvm_pvm ]] || KR_ACCEL=tcg
	fi
	case $KR_ACCEL in
	tcg) cpu=max ;;
	kvm) cpu=host ;;
	*) die "KR_ACCEL=$KR_ACCEL: expected tcg or kvm" ;;
	esac
	# shellcheck disable=SC2054 # commas inside QEMU option values
	floor_cmd=("$qemu" -machine "q35,accel=$KR_ACCEL,memory-backend=pc.ram" -cpu "$cpu"
		-m 512 -object memory-backend-memfd,id=pc.ram,size=512M,share=on
		-smp 1 -nodefaults -no-user-config -nographic
		-serial "file:$T/floor-console.log"
		-kernel "$kernel" -initrd "$T/floor.cpio.gz"
		-append 'console=ttyS0 panic=-1 quiet' -no-reboot)
}
cmd_floor() { rm -f "$T/floor-console.log"; cmd=("${floor_cmd[@]}"); }
check_floor() {
	grep -q 'reboot: Power down' "$T/floor-console.log" 2>/dev/null ||
		why="the guest did not power off (no 'reboot: Power down' on its console)"
}

# time_one RT ID: one timed run; sets elapsed (microseconds).  A failure
# ends the benchmark with its output: timing an error path means nothing.
# timeout(1) puts the run in its own process group, which the clean-up can
# end (QEMU included) without touching this shell; the run is a background
# job so that INT and TERM reach the traps at once (child names it).
time_one() {
	local rt=$1 id=$2 t0 t1 rc=0 cmd=()
	why=
	"cmd_$rt" "$id"
	! declare -F run_started >/dev/null || run_started "$rt" "$id"
	t0=${EPOCHREALTIME//[^0-9]/}
	timeout -k 10 "$TMO" "${cmd[@]}" </dev/null >"$T/out" 2>"$T/err" &
	child=$!
	wait "$child" || rc=$?
	child=
	t1=${EPOCHREALTIME//[^0-9]/}
	if ((rc != 0)); then
		((rc == 124)) && why="timed out after ${TMO}s" || why="exit status $rc"
	else
		"check_$rt"
	fi
	if [[ -n $why ]]; then
		echo "$me: $rt failed: $why" >&2
		echo "--- command: ${cmd[*]@Q}" >&2
		echo "--- stdout:" >&2; tail -30 "$T/out" >&2
		echo "--- stderr:" >&2; tail -30 "$T/err" >&2
		if [[ $rt == floor && -f $T/floor-console.log ]]; then
			echo "--- guest console:" >&2; tail -30 "$T/floor-console.log" >&2
		fi
		! declare -F run_failed >/dev/null || run_failed "$rt"
		exit 1
	fi
	elapsed=$((t1 - t0))
	! declare -F run_done >/dev/null || run_done "$rt"
}

# stats "V1 V2 ..." DIVISOR: prints "MEDIAN P90 COUNT" (p90 by nearest rank).
stats() {
	tr ' ' '\n' <<<"$1" | grep . | sort -n | awk -v d="$2" '
		{ v[NR] = $1 }
		END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.9 * NR); if (r < 0.9 * NR) r++
			printf "%.1f %.1f %d\n", m / d, v[r] / d, NR
		}'
}
# ratio A B: A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
