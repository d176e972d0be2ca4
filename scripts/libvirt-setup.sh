#!/bin/sh
# Set up this host for the libvirt hypervisor backend (hypervisor/libvirt.c).
# Idempotent; run as root.  These machines have no systemd.
#
#   scripts/libvirt-setup.sh              packages, libvirt-qemu user, virtlogd + libvirtd
#   scripts/libvirt-setup.sh --no-daemons packages and user only: enough for the
#                                         default qemu:///embed connection
#
# The libvirt-qemu user/group are needed in both modes: libvirt's QEMU driver
# (embedded or in libvirtd) refuses to initialise when Debian's default QEMU
# user does not exist, even when qemu.conf names another user.
set -eu
daemons=1
case "${1:-}" in
	--no-daemons) daemons=0 ;;
	"") ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "libvirt-setup: unknown option $1" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "libvirt-setup: must run as root" >&2; exit 1; }

missing=
for p in libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev qemu-system-x86; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "libvirt-setup: installing$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
fi

getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
	useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt --no-create-home \
		--shell /usr/sbin/nologin --comment "Libvirt Qemu" libvirt-qemu
mkdir -p /var/log/libvirt

[ "$daemons" = 1 ] || exit 0
running() { pgrep -x "$1" >/dev/null 2>&1; }
running virtlogd || virtlogd -d
running libvirtd || libvirtd -d
for _ in $(seq 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
[ -S /run/libvirt/libvirt-sock ] || { echo "libvirt-setup: libvirtd did not create /run/libvirt/libvirt-sock" >&2; exit 1; }
echo "libvirt-setup: libvirtd running"
