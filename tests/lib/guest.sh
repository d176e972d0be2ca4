# What every test that boots our guest needs first (sourced after
# tests/lib/tap.sh, from the repo root; the script defines skip_all).
#
#   guest_setup [--libvirt]
#
# Skips (skip_all) without root or QEMU/virtiofsd; with --libvirt also
# installs the libvirt packages and user (scripts/libvirt-setup.sh
# --no-daemons: enough for qemu:///embed).  Builds, or takes from the cache,
# the guest kernel and the initramfs and sets kernel and initrd.  The
# initramfs always comes from build/: the guest needs the static agent,
# which the sanitized tree does not have.
guest_setup() {
	local tool log=${TMPDIR:-/tmp}/kr-kernel-build.log

	[ "$(id -u)" = 0 ] || skip_all "needs root"
	for tool in qemu-system-x86_64 /usr/lib/qemu/virtiofsd; do
		command -v "$tool" >/dev/null || skip_all "$tool not installed (apt-get install qemu-system-x86)"
	done
	if [ "${1:-}" = --libvirt ]; then
		scripts/libvirt-setup.sh --no-daemons >/dev/null ||
			{ ok 1 "scripts/libvirt-setup.sh --no-daemons"; finish; }
	fi
	kernel=$(guest-kernel-config/build.sh --print-path 2>"$log") ||
		{ tail -20 "$log"; ok 1 "guest kernel builds"; finish; }
	make -s build/kata-initramfs.cpio.gz >/dev/null || { ok 1 "initramfs builds"; finish; }
	initrd=$PWD/build/kata-initramfs.cpio.gz
}
