#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests and differential tests
# (normal build and AddressSanitizer+UBSan build), short fuzz runs of every
# parser of untrusted bytes, and a final leak check of the host.
#
# Each part prints TAP and a "N passed, N failed, N skipped" line; this
# script adds them up and ends with one such line.  Exit status is non-zero
# if anything failed.  Options (environment): KR_FUZZ_SECONDS (default 20
# per target, 0 to skip fuzzing), KR_SKIP_ASAN=1.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${KR_FUZZ_SECONDS:-20}
LOG_DIR=${KR_TEST_LOGS:-build/test-logs}
mkdir -p "$LOG_DIR"
pass=0 fail=0 skip=0
failed_parts=()

# Run one part; parse its summary line; a part that crashes or prints no
# summary counts as one failure.
part() {
	local name=$1; shift
	local log="$LOG_DIR/${name//\//_}.log" line p f s rc
	echo "=== $name"
	"$@" >"$log" 2>&1
	rc=$?
	grep -E '^(not ok|ok .*# SKIP|#   )' "$log" | head -40
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	if [ -z "$line" ]; then
		echo "--- $name: no summary line (exit $rc); last lines:"
		tail -15 "$log"
		fail=$((fail + 1))
		failed_parts+=("$name")
		return
	fi
	read -r p f s < <(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')
	s=${s:-0}
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
		[ "$f" = 0 ] && fail=$((fail + 1))
		failed_parts+=("$name")
	fi
	echo "    $line"
}

# A C test binary: the ones in build/tests/ named test_*.
c_tests() {
	local dir=$1 label=$2
	for t in "$dir"/tests/test_*; do
		[ -x "$t" ] || continue
		part "$label/$(basename "$t")" env KR_AGENT="$dir/kata-agent" KR_PROBE=build/tests/probe "$t"
	done
}

shell_tests() {
	local dir=$1 label=$2
	part "$label/runc-reference" env KR_BUILD="$dir" bash tests/integration/test_runc_reference.sh runc agent
	for t in tests/integration/test_*.sh; do
		[ "$(basename "$t")" = test_runc_reference.sh ] && continue
		# The guest runs the static (unsanitized) agent: once is enough.
		if [ "$label" = asan ]; then
			case $(basename "$t") in test_guest_vm.sh|test_initramfs.sh) continue ;; esac
		fi
		part "$label/$(basename "$t" .sh)" env KR_BUILD="$dir" bash "$t"
	done
}

fuzz_part() {
	local n=0 failed=0
	for f in build/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		local name corpus
		name=$(basename "$f")
		corpus=tests/fuzz/corpus/${name#fuzz_}
		local work
		work=$(mktemp -d)
		[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
		if (cd "$work" && "$OLDPWD/$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 . ) >"$work.log" 2>&1; then
			echo "ok $((++n)) - $name ($(grep -E 'stat::number_of_executed_units' "$work.log" | awk '{print $2}') execs in ${FUZZ_SECONDS}s)"
		else
			echo "not ok $((++n)) - $name"
			tail -30 "$work.log"
			failed=$((failed + 1))
		fi
		rm -rf "$work" "$work.log"
	done
	echo "$((n - failed)) passed, $failed failed, 0 skipped"
}

host_leaks() {
	local n=0 bad=0
	check() {
		n=$((n + 1))
		if [ -z "$2" ]; then echo "ok $n - $1"; else echo "not ok $n - $1: $2"; bad=$((bad + 1)); fi
	}
	check "no kata-agent processes left" "$(pgrep -a -x kata-agent || true)"
	check "no QEMU or virtiofsd left" "$(pgrep -a -f 'qemu-system-x86_64|/usr/lib/qemu/virtiofsd' | grep -v pgrep || true)"
	check "no kata-vmm left" "$(pgrep -a -x kata-vmm || true)"
	check "no kata-run or shim processes left" "$(pgrep -a -f 'kata-run (run|--)|containerd-shim-kata-run-v2' | grep -v pgrep || true)"
	check "no sandbox state left" "$(ls /run/kata-run/pods /run/kata-run/vm 2>/dev/null | grep -v -e '^$' -e ':$' || true)"
	check "no test mounts left" "$(grep -E 'kr-itest|kr-test|kata-run' /proc/self/mountinfo || true)"
	check "no test cgroups left" "$(find /sys/fs/cgroup -maxdepth 6 -type d \( -name 'kr-itest*' -o -name 'kr-test*' -o -name 'kr-diff*' -o -name 'kata-run*' \) 2>/dev/null || true)"
	echo "$((n - bad)) passed, $bad failed, 0 skipped"
}

echo "=== build"
scripts/install-deps.sh || exit 1
make -j"$(nproc)" WERROR=1 >"$LOG_DIR/build.log" 2>&1 || { tail -30 "$LOG_DIR/build.log"; echo "0 passed, 1 failed"; exit 1; }
# The guest: build/bzImage (a link into the kernel cache; the first build
# on a machine takes about 10 minutes) and build/kata-initramfs.cpio.gz,
# where kata-run and the shim look for them.
make guest-kernel initramfs >"$LOG_DIR/guest.log" 2>&1 || { tail -30 "$LOG_DIR/guest.log"; echo "0 passed, 1 failed"; exit 1; }
# The nested-KVM tests (tests/lib/kvm_nested.sh) build the "kvmhost" kernel
# flavour into the same cache on first use (about 15 minutes more).
# libvirt: packages, the libvirt-qemu user, virtlogd + libvirtd (no systemd
# here); the backend's default qemu:///embed needs no daemon, the test of
# qemu:///system does.
scripts/libvirt-setup.sh >"$LOG_DIR/libvirt-setup.log" 2>&1 ||
	{ echo "libvirt set-up failed:"; tail -10 "$LOG_DIR/libvirt-setup.log"; }
c_tests build normal
shell_tests build normal

if [ "${KR_SKIP_ASAN:-0}" != 1 ]; then
	echo "=== build (AddressSanitizer + UBSan)"
	make -j"$(nproc)" SANITIZE=1 WERROR=1 >"$LOG_DIR/build-asan.log" 2>&1 || { tail -30 "$LOG_DIR/build-asan.log"; echo "0 passed, 1 failed"; exit 1; }
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	c_tests build-asan asan
	shell_tests build-asan asan
	unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [ "$FUZZ_SECONDS" != 0 ]; then
	echo "=== fuzz (${FUZZ_SECONDS}s per target)"
	make fuzz >"$LOG_DIR/fuzz-build.log" 2>&1 || { tail -20 "$LOG_DIR/fuzz-build.log"; fail=$((fail + 1)); }
	part fuzz fuzz_part
fi

part host-leaks host_leaks

echo
[ ${#failed_parts[@]} -gt 0 ] && echo "failed parts: ${failed_parts[*]}"
echo "total: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
