#!/usr/bin/env bash
# `kata-run --hypervisor kvm`: containers in VMs of our own VMM (kata-vmm),
# end to end, under real KVM nested in QEMU TCG (tests/lib/kvm_nested.sh):
# kata-run, kata-vmm, virtiofsd, the guest kernel and initramfs, OCI bundles,
# all in one nested boot; the host checks what each case printed.
#
#   echo      a container's output and exit status 0, its rootfs shared
#             over virtio-fs, the agent reached over the hybrid vsock
#   exit      the container's exit status (7) is kata-run's
#   stdin     stdin piped through to the container
#   cleanup   kata-run SIGKILLed mid-run: `kata-run cleanup` removes the
#             VM (kata-vmm, virtiofsd, state)
#   after every case: no kata-vmm or virtiofsd process, no state left
#
# Env: KR_BUILD (build dir, default build); KR_KVM_NESTED_KEEP=1 keeps the
# work dir; the KVM_NESTED_* variables of tests/lib/kvm_nested.sh.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${KR_BUILD:-build}
. tests/lib/tap.sh
. tests/lib/kvm_nested.sh
. tests/lib/bundle.sh

skip_all() { skip_one "$1"; finish; }
[ "$(id -u)" = 0 ] || skip_all "needs root"
for f in "$BUILD/kata-run" "$BUILD/kata-vmm" build/kata-initramfs.cpio.gz /usr/lib/qemu/virtiofsd; do
	[ -e "$f" ] || skip_all "$f is missing (make; make initramfs; scripts/install-deps.sh)"
done
kernel=$(guest-kernel-config/build.sh --print-path 2>/dev/null) || skip_all "guest kernel not built (make guest-kernel)"
kvm_nested_setup
case $? in
0) ;;
1) skip_all "nested KVM: $KVM_NESTED_REASON" ;;
*) ok 1 "nested KVM set-up: $KVM_NESTED_REASON"; finish ;;
esac

W=$(mktemp -d /tmp/kr-krkvm.XXXXXX)
if [ "${KR_KVM_NESTED_KEEP:-0}" = 1 ]; then
	trap 'echo "# kept: $W"' EXIT
else
	trap 'rm -rf "$W"' EXIT
fi
export KVM_NESTED_TIMEOUT=${KVM_NESTED_TIMEOUT:-500} KVM_NESTED_MEM=${KVM_NESTED_MEM:-1536}

# Bundles, made on the host (python3, runc spec) and copied in.
make_bundle "$W/b/echo" -- sh -c 'echo "hello from $(hostname) on $(uname -r)"; cat /etc/kata-run-test' >/dev/null 2>&1 &&
	echo "shared over virtio-fs" >"$W/b/echo/rootfs/etc/kata-run-test" &&
	make_bundle "$W/b/exit" -- sh -c 'exit 7' >/dev/null 2>&1 &&
	make_bundle "$W/b/stdin" -- sh -c 'tr a-z A-Z' >/dev/null 2>&1 &&
	make_bundle "$W/b/sleep" -- sleep 300 >/dev/null 2>&1 ||
	skip_all "cannot make OCI bundles (tests/lib/bundle.sh needs runc and python3)"
cat >"$W/config.toml" <<'EOF'
memory_mib = 256
boot_timeout_s = 240
EOF

cat >"$W/script.sh" <<'EOF'
KR="/t/kata-run --config /t/config.toml --hypervisor kvm"
mount --make-rshared / 2>/dev/null
leftovers() {
	pidof kata-vmm >/dev/null && echo "LEFT kata-vmm"
	pidof virtiofsd >/dev/null && echo "LEFT virtiofsd"
	[ -n "$(ls -A /run/kata-run/vm 2>/dev/null)" ] && echo "LEFT vm state: $(ls /run/kata-run/vm)"
	[ -n "$(ls -A /run/kata-run/pods 2>/dev/null)" ] && echo "LEFT pod dir: $(ls /run/kata-run/pods)"
	return 0
}
run() { # NAME CMD...
	name=$1; shift
	echo "=== $name"
	"$@" 2>&1
	echo "status $?"
	leftovers
	echo "=== end $name"
}
run echo $KR run --timings /t/b/echo
run exit $KR run /t/b/exit
stdin_case() { echo "make me loud" | $KR run /t/b/stdin; }
run stdin stdin_case
cleanup_case() {
	$KR run --id krkill /t/b/sleep > /tmp/sleep.log 2>&1 &
	kr=$!
	i=0
	while ! pidof kata-vmm >/dev/null && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
	sleep 2
	kill -KILL $kr
	wait $kr
	echo "after SIGKILL: $(pidof kata-vmm >/dev/null && echo vmm-running)"
	$KR cleanup krkill
	echo "cleanup status $?"
	sleep 0.5
}
run cleanup cleanup_case
EOF
kvm_nested_run "$W/run" "$W/script.sh" "$BUILD/kata-run" "$BUILD/kata-vmm" "$kernel=/t/bzImage" \
	build/kata-initramfs.cpio.gz "$W/config.toml" "$W/b" \
	/usr/lib/qemu/virtiofsd=/usr/lib/qemu/virtiofsd
rc=$?
if [ $rc = 125 ]; then
	ok 1 "nested run: $KVM_NESTED_ERROR"
	tail -20 "$W/run/console" | sed 's/^/#   /'
	finish
fi
echo "# QEMU ${KVM_NESTED_SECONDS}s, script ${KVM_NESTED_SCRIPT_SECONDS:-?}s"

out_of() { sed -n "/^=== $1\$/,/^=== end $1\$/p" "$W/run/output"; }
# (grep -q quits at the first match: under pipefail a pipe from sed would
# then fail with SIGPIPE, so grep reads a here-string instead.)
has() { grep -Eq -- "$2" <<<"$(out_of "$1")"; }
status_of() { out_of "$1" | sed -n 's/^status \([0-9]*\)$/\1/p' | head -n1; }
check() { # NAME DESCRIPTION TEST...
	local name=$1 what=$2 r
	shift 2
	"$@"
	r=$?
	ok $r "$what"
	[ $r = 0 ] || { echo "#   -- $name:"; out_of "$name" | tail -n 20 | sed 's/^/#   /'; }
}

check echo "a container runs in a kata-vmm VM: its output, exit 0, the rootfs over virtio-fs" \
	eval 'has echo "^hello from .* on 6\." && has echo "^shared over virtio-fs$" && [ "$(status_of echo)" = 0 ]'
timings=$(out_of echo | grep '^timings:' | head -n1)
[ -n "$timings" ] && echo "# $timings"
check exit "the container's exit status is kata-run's (7)" eval '[ "$(status_of exit)" = 7 ]'
check stdin "stdin reaches the container" eval 'has stdin "^MAKE ME LOUD$" && [ "$(status_of stdin)" = 0 ]'
check cleanup "kata-run SIGKILLed: the VM outlives it, 'kata-run cleanup' removes it" \
	eval 'has cleanup "^after SIGKILL: vmm-running$" && has cleanup "^cleanup status 0$"'
for c in echo exit stdin cleanup; do
	check "$c" "$c: nothing left behind (no kata-vmm, no virtiofsd, no state)" eval "! has $c '^LEFT '"
done

# On a host with hardware KVM, the same directly, without nesting.
if [ -e /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ]; then
	out=$("$BUILD/kata-run" --config "$W/config.toml" --hypervisor kvm run "$W/b/echo" 2>&1)
	r=$?
	[ $r = 0 ] && grep -q '^shared over virtio-fs$' <<<"$out" &&
		[ -z "$(pgrep -x kata-vmm)" ] && [ -z "$(ls -A /run/kata-run/vm 2>/dev/null)" ]
	ok $? "on this host's hardware KVM: a container runs, nothing left (exit $r)"
else
	skip_one "directly on this host: no hardware KVM here (/dev/kvm missing or PVM); the nested cases above ran instead"
fi
finish
