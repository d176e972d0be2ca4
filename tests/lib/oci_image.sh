# shellcheck shell=bash
# An OCI image tarball built offline, for `ctr images import`.  Source it:
#
#   . tests/lib/oci_image.sh
#   make_busybox_image OUT.tar [NAME]
#       OUT.tar: an OCI image layout (oci-layout, index.json, blobs/sha256/)
#       with one uncompressed layer: Debian's static busybox as /bin/busybox,
#       applet links in /bin (KR_IMAGE_APPLETS), /etc/passwd and /etc/group
#       (root), empty /proc /sys /dev /tmp /root.  Config: amd64/linux,
#       Env ["PATH=/bin"], Cmd ["/bin/sh"].  NAME (default
#       docker.io/library/kr-busybox:latest) goes into the index's
#       io.containerd.image.name annotation, so `ctr images import OUT.tar`
#       creates that image.  Reproducible: the same busybox gives the same
#       bytes (fixed mtimes and owners, sorted names, no compression).
#
# Environment: BUSYBOX (default /bin/busybox, from busybox-static; `file`
# must say it is statically linked).

KR_IMAGE_NAME_DEFAULT=docker.io/library/kr-busybox:latest
KR_IMAGE_APPLETS=(sh ls cat echo sleep ps top id env true false kill head dd
	wc yes tty stty grep mount test)

make_busybox_image() {
	local out=${1:?make_busybox_image OUT.tar [NAME]} name=${2:-$KR_IMAGE_NAME_DEFAULT}
	local bb=${BUSYBOX:-/bin/busybox} t a rc=0 tarflags
	if [[ ! -x $bb ]]; then
		echo "make_busybox_image: no busybox at $bb (apt-get install busybox-static)" >&2
		return 1
	fi
	if ! file -L "$bb" | grep -Eq 'statically linked|static-pie linked'; then
		echo "make_busybox_image: $bb is not statically linked: $(file -L "$bb")" >&2
		echo "make_busybox_image: apt-get install busybox-static, or BUSYBOX=PATH" >&2
		return 1
	fi
	for a in tar sha256sum stat; do
		command -v "$a" >/dev/null || { echo "make_busybox_image: $a not found" >&2; return 1; }
	done
	t=$(mktemp -d "${TMPDIR:-/tmp}/kr-oci.XXXXXX") || return 1
	# shellcheck disable=SC2054 # commas inside --pax-option
	tarflags=(--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner
		--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
	(
		set -e
		umask 022
		r=$t/rootfs
		mkdir -p "$r/bin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/root" \
			"$t/oci/blobs/sha256"
		chmod 1777 "$r/tmp"
		chmod 0700 "$r/root"
		cp "$bb" "$r/bin/busybox"
		chmod 0755 "$r/bin/busybox"
		for a in "${KR_IMAGE_APPLETS[@]}"; do ln -s busybox "$r/bin/$a"; done
		printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
		printf 'root:x:0:\n' >"$r/etc/group"
		tar -C "$r" "${tarflags[@]}" -cf "$t/layer.tar" .
		# blob FILE: stores FILE as a blob, prints "DIGEST SIZE"
		blob() {
			local d
			d=$(sha256sum "$1" | cut -d' ' -f1)
			cp "$1" "$t/oci/blobs/sha256/$d"
			echo "$d $(stat -c %s "$1")"
		}
		read -r L LS < <(blob "$t/layer.tar")
		printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"kata-run tests/lib/oci_image.sh"}]}' \
			"$L" >"$t/config.json"
		read -r C CS < <(blob "$t/config.json")
		printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
			"$C" "$CS" "$L" "$LS" >"$t/manifest.json"
		read -r M MS < <(blob "$t/manifest.json")
		ref=${name##*:}
		[[ $name == *:* && $ref != */* ]] || ref=latest
		printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
			"$M" "$MS" "$name" "$ref" >"$t/oci/index.json"
		printf '{"imageLayoutVersion":"1.0.0"}' >"$t/oci/oci-layout"
		tar -C "$t/oci" "${tarflags[@]}" -cf "$t/image.tar" oci-layout index.json blobs
		mv -f "$t/image.tar" "$out"
	) || rc=1
	rm -rf "$t"
	((rc == 0)) || echo "make_busybox_image: building $out failed" >&2
	return "$rc"
}
