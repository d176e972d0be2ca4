#!/bin/bash
# guest-kernel-config/build.sh: build (or find in the cache) the kata-run
# guest kernel.
#
#   build.sh                  build if needed, print the paths of the results
#   build.sh --print-path     print only the cached bzImage path (build if needed)
#   build.sh --print-vmlinux  print only the cached vmlinux (PVH ELF) path
#   build.sh --print-dir      print only the cache directory of this kernel
#   build.sh --print-key      print the cache key and exit (never builds)
#   build.sh --force          rebuild even if the cache has this key
#   build.sh --flavour NAME   with any of the above: the kernel flavour NAME,
#                             config-fragment-NAME too (flavours: kvmhost)
#
# Inputs: Debian's linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz), the
# config-fragment and verify-config.sh next to this script.
# Cache:  ${KATA_RUN_CACHE:-/var/cache/kata-run}/kernel/
#           src/<package version>/linux-source-6.1/   extracted, pristine tree
#           <key>/{bzImage,vmlinux,config,System.map,manifest}
#         key = sha256 over config-fragment, verify-config.sh, this script,
#         the linux-source-6.1 package version and the compiler/binutils
#         versions.  Every cache entry appears by one rename() once it is
#         complete, so an interrupted build never leaves a half entry.
#         A flavour's key is "<flavour>-<sha256>" (so is its entry): the hash
#         also covers the flavour name, config-fragment-<flavour> and all of
#         this script.  The default key leaves out this script's flavour lines
#         (every line that mentions "flavour" is one; it must do nothing when no
#         --flavour is given): default keys are the same as before flavours.
# Env:    KATA_RUN_CACHE (cache root), JOBS (make -j, default nproc).
# Diagnostics go to stderr; stdout carries only the requested paths.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/config-fragment
verify=$here/verify-config.sh
self=$here/$(basename "${BASH_SOURCE[0]}")

SRC_PKG=linux-source-6.1
SRC_TARBALL=/usr/src/$SRC_PKG.tar.xz
CACHE_ROOT=${KATA_RUN_CACHE:-/var/cache/kata-run}
KDIR=$CACHE_ROOT/kernel
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

log() { printf 'guest-kernel: %s\n' "$*" >&2; }
die() { printf 'guest-kernel: error: %s\n' "$*" >&2; exit 1; }

mode=paths
force=0
flavour=
flavour_next=0
for arg in "$@"; do
	if [ "$flavour_next" = 1 ]; then flavour=$arg flavour_next=0; continue; fi
	case $arg in
	--print-path) mode=bzimage ;;
	--print-vmlinux) mode=vmlinux ;;
	--print-dir) mode=dir ;;
	--print-key) mode=key ;;
	--force) force=1 ;;
	--flavour) flavour_next=1 ;;
	--flavour=*) flavour=${arg#--flavour=} ;;
	-h|--help) sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$arg' (try --help)" ;;
	esac
done
[ "$flavour_next" = 0 ] || die "--flavour needs a NAME (flavour NAME uses config-fragment-NAME)"

[ "$(uname -m)" = x86_64 ] || die "the guest kernel is x86_64 and is built natively; this host is $(uname -m)"
[ -r "$fragment" ] || die "missing $fragment"
[ -r "$verify" ] || die "missing $verify"
case $flavour in *[!a-z0-9_]*) die "bad flavour name '$flavour' (a-z, 0-9, _)" ;; esac
flavour_fragment=$here/config-fragment-$flavour
[ -z "$flavour" ] || [ -r "$flavour_fragment" ] || die "unknown flavour '$flavour': no $flavour_fragment"
flavour_script=$self

# ---- cache key -------------------------------------------------------------------
# Needs only dpkg-query, gcc and ld; returns 1 if one of them cannot answer
# (then the dependency check below installs what is missing).
key=
entry=
compute_key() {
	local st
	st=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$SRC_PKG" 2>/dev/null) || return 1
	case $st in ii*) ;; *) return 1 ;; esac
	src_version=${st#*|}
	[ -n "$src_version" ] || return 1
	command -v gcc >/dev/null && command -v ld >/dev/null || return 1
	cc_version="gcc $(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion); $(ld --version | head -n1)"
	# This script's bytes without its flavour lines (see the top), on fd 8.
	exec 8< <(grep -v flavour "$flavour_script"); local self=/dev/fd/8 # flavour-free
	key=$(
		{
			printf 'kata-run guest kernel cache v1\n'
			printf '== %s %s\n' "$SRC_PKG" "$src_version"
			printf '== toolchain %s\n' "$cc_version"
			printf '== config-fragment\n'; cat "$fragment"
			printf '== verify-config.sh\n'; cat "$verify"
			printf '== build.sh\n'; cat "$self"
			[ -z "$flavour" ] || { printf '== flavour %s\n' "$flavour"; cat "$flavour_fragment"; }
			[ -z "$flavour" ] || { printf '== build.sh with flavour lines\n'; cat "$flavour_script"; }
		} | sha256sum | cut -d' ' -f1
	)
	exec 8<&-; [ -z "$flavour" ] || key=$flavour-$key
	entry=$KDIR/$key
}

# ---- build dependencies --------------------------------------------------------
# Each check names the Debian package that satisfies it; apt-get runs only
# for the checks that fail, and only when we are about to build.
missing_pkgs=()
need() { # need PACKAGE TEST...
	local pkg=$1; shift
	if ! "$@" >/dev/null 2>&1; then missing_pkgs+=("$pkg"); fi
}
have_cmd() { command -v "$1"; }
src_installed() {
	dpkg-query -W -f='${db:Status-Abbrev}' "$SRC_PKG" 2>/dev/null | grep -q '^ii' &&
		test -r "$SRC_TARBALL"
}
check_deps() {
	missing_pkgs=()
	need build-essential have_cmd gcc
	need build-essential have_cmd make
	need binutils have_cmd strip
	need flex have_cmd flex
	need bison have_cmd bison
	need bc have_cmd bc
	need perl have_cmd perl
	need xz-utils have_cmd xz
	need lz4 have_cmd lz4            # CONFIG_KERNEL_LZ4
	need libelf-dev test -r /usr/include/gelf.h        # objtool
	need libssl-dev test -r /usr/include/openssl/opensslv.h
	need util-linux have_cmd flock
	need "$SRC_PKG" src_installed
}
ensure_deps() {
	check_deps
	[ ${#missing_pkgs[@]} -gt 0 ] || return 0
	mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | awk '!seen[$0]++')
	log "missing build dependencies: ${missing_pkgs[*]}; installing with apt-get"
	[ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "${missing_pkgs[@]}" >&2; then
		apt-get update >&2 || die "apt-get update failed"
		apt-get install -y --no-install-recommends "${missing_pkgs[@]}" >&2 ||
			die "apt-get install ${missing_pkgs[*]} failed"
	fi
	check_deps
	[ ${#missing_pkgs[@]} -eq 0 ] || die "still missing after apt-get: ${missing_pkgs[*]}"
}

cache_complete() {
	[ -s "$1/bzImage" ] && [ -s "$1/vmlinux" ] && [ -s "$1/config" ] && [ -s "$1/manifest" ]
}

report() {
	case $mode in
	bzimage) printf '%s\n' "$entry/bzImage" ;;
	vmlinux) printf '%s\n' "$entry/vmlinux" ;;
	dir) printf '%s\n' "$entry" ;;
	paths)
		printf 'bzImage: %s\n' "$entry/bzImage"
		printf 'vmlinux: %s\n' "$entry/vmlinux"
		printf 'config:  %s\n' "$entry/config"
		printf 'size:    bzImage %s bytes, vmlinux %s bytes\n' \
			"$(stat -c %s "$entry/bzImage")" "$(stat -c %s "$entry/vmlinux")"
		;;
	esac
}

# Fast path: no dependency check, no lock, no work.
if [ "$mode" != key ] && [ $force = 0 ] && compute_key && cache_complete "$entry"; then
	log "cached: $entry"
	report
	exit 0
fi

ensure_deps
compute_key || die "cannot compute the cache key (dpkg-query $SRC_PKG, gcc, ld)"
if [ "$mode" = key ]; then
	printf '%s\n' "$key"
	exit 0
fi

# ---- serialize builders on this cache ------------------------------------------------
mkdir -p "$KDIR" 2>/dev/null && [ -w "$KDIR" ] ||
	die "cannot write the cache $KDIR (set KATA_RUN_CACHE to a writable directory)"
exec 9>"$KDIR/.lock"
if ! flock -n 9; then
	log "another build holds $KDIR/.lock; waiting"
	flock 9
fi
# Someone else may have built it while we waited.
if [ $force = 0 ] && cache_complete "$entry"; then
	log "cached: $entry"
	report
	exit 0
fi
# We hold the lock, so no other build is running: leftovers of killed runs go.
rm -rf "$KDIR"/.tmp-* "$KDIR"/src/.tmp-*

tmp=
child=
cleanup() { if [ -n "$tmp" ]; then rm -rf "$tmp"; fi; }
on_signal() {
	log "interrupted; nothing was added to the cache"
	# GNU make passes SIGTERM on to the jobs it runs.
	if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
	exit 130
}
trap cleanup EXIT
trap on_signal INT TERM HUP

# ---- pristine source tree, extracted once per package version ---------------------
# Builds use O= (objects outside the source), so the tree stays clean and is
# shared by every key that uses this package version.
src_parent=$KDIR/src/$(printf '%s' "$src_version" | tr -c 'A-Za-z0-9.+~_-' '_')
src=$src_parent/$SRC_PKG
if [ ! -f "$src/Makefile" ]; then
	log "extracting $SRC_TARBALL (once per package version)"
	mkdir -p "$KDIR/src"
	tmp=$(mktemp -d "$KDIR/src/.tmp-XXXXXX")
	chmod 755 "$tmp"
	tar -xJf "$SRC_TARBALL" -C "$tmp"
	[ -f "$tmp/$SRC_PKG/Makefile" ] || die "$SRC_TARBALL did not contain $SRC_PKG/Makefile"
	rm -rf "$src_parent"
	mv "$tmp" "$src_parent"
	tmp=
fi
if [ -e "$src/.config" ] || [ -d "$src/include/config" ]; then
	die "$src is not pristine (has a .config); delete $src_parent and rerun"
fi

# ---- configure, verify, build --------------------------------------------------------
tmp=$(mktemp -d "$KDIR/.tmp-$key.XXXXXX")
obj=$tmp/obj
out=$tmp/out
mkdir -p "$obj" "$out"
buildlog=$out/build.log
failed_log=$KDIR/failed-$key.log

build_stamp=$(date -u -d "@$(stat -c %Y "$SRC_TARBALL")")
# make runs in the background so that a signal reaches on_signal at once
# (bash runs traps only between commands, or during `wait`); fd 9 (the lock)
# is closed in it so that a stray job never holds the lock.
kmake() {
	local rc=0
	( exec 9>&-; exec make -C "$src" O="$obj" ARCH=x86_64 \
		KBUILD_BUILD_USER=kata-run KBUILD_BUILD_HOST=kata-run \
		KBUILD_BUILD_TIMESTAMP="$build_stamp" \
		"$@" >>"$buildlog" 2>&1 ) &
	child=$!
	wait "$child" || rc=$?
	child=
	return $rc
}
fail() {
	cp "$buildlog" "$failed_log" 2>/dev/null || true
	tail -n 40 "$buildlog" >&2 || true
	die "$1 (full log: $failed_log)"
}

log "configuring: tinyconfig + $(basename "$fragment") (key ${key:0:16}...)"
[ -z "$flavour" ] || log "flavour $flavour: + $(basename "$flavour_fragment") (last)"
# `make tinyconfig` is allnoconfig with tiny-base.config, then tiny.config.
# We pass those and our fragment as one KCONFIG_ALLCONFIG to allnoconfig, so
# every option we do not name stays off.  (Merging the fragment into a
# finished tinyconfig and running olddefconfig instead would turn on the
# defaults of every newly visible option: wireless, thermal, cpufreq...)
cat "$src/kernel/configs/tiny-base.config" \
    "$src/kernel/configs/tiny.config" \
    "$src/arch/x86/configs/tiny.config" \
    "$fragment" >"$tmp/allconfig"
[ -z "$flavour" ] || cat "$flavour_fragment" >>"$tmp/allconfig"
KCONFIG_ALLCONFIG=$tmp/allconfig kmake allnoconfig || fail "allnoconfig failed"
kmake olddefconfig || fail "olddefconfig failed"
if ! "$verify" "$fragment" "$obj/.config" >"$tmp/verify.out" 2>&1; then
	cat "$tmp/verify.out" >&2
	cp "$obj/.config" "$KDIR/failed-$key.config"
	die "the configuration lacks options the fragment requires (see above; .config kept at $KDIR/failed-$key.config)"
fi
cat "$tmp/verify.out" >&2
if [ -n "$flavour" ] && ! "$verify" "$flavour_fragment" "$obj/.config" >"$tmp/verify-flavour.out" 2>&1; then
	sed "s/^/$(basename "$flavour_fragment"): /" "$tmp/verify-flavour.out" >&2; cp "$obj/.config" "$KDIR/failed-$key.config" # flavour
	die "the configuration lacks options the $flavour flavour requires (see above; .config kept at $KDIR/failed-$key.config)"
fi # flavour
[ -z "$flavour" ] || sed "s/^/$(basename "$flavour_fragment"): /" "$tmp/verify-flavour.out" >&2

log "building bzImage and vmlinux with make -j$JOBS (takes minutes; log: $buildlog)"
start=$(date +%s)
kmake -j"$JOBS" bzImage vmlinux || fail "kernel build failed"
log "built in $(( $(date +%s) - start )) s"

cp "$obj/arch/x86/boot/bzImage" "$out/bzImage"
strip -o "$out/vmlinux" "$obj/vmlinux"
cp "$obj/.config" "$out/config"
cp "$obj/System.map" "$out/System.map"
cp "$fragment" "$out/config-fragment"
[ -z "$flavour" ] || cp "$flavour_fragment" "$out/config-fragment-$flavour"
# The PVH entry note (Xen ELF note type 18, PHYS32_ENTRY) must survive strip.
if ! readelf -n "$out/vmlinux" 2>/dev/null | grep -q 'Xen.*0x00000012\|PHYS32_ENTRY'; then
	fail "stripped vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"
fi
{
	printf 'key=%s\n' "$key"
	[ -z "$flavour" ] || printf 'flavour=%s\n' "$flavour"
	printf 'source=%s %s\n' "$SRC_PKG" "$src_version"
	printf 'kernelrelease=%s\n' "$(make -s -C "$src" O="$obj" ARCH=x86_64 kernelrelease 2>/dev/null)"
	printf 'toolchain=%s\n' "$cc_version"
	printf 'bzImage_bytes=%s\n' "$(stat -c %s "$out/bzImage")"
	printf 'vmlinux_bytes=%s\n' "$(stat -c %s "$out/vmlinux")"
	printf 'built=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'build_seconds=%s\n' "$(( $(date +%s) - start ))"
} >"$out/manifest"

# Publish atomically: one rename of a complete directory (an old entry, with
# --force, is first moved aside into $tmp, which is deleted on exit).
if [ -e "$entry" ]; then mv "$entry" "$tmp/old"; fi
mv "$out" "$entry"
rm -f "$failed_log" "$KDIR/failed-$key.config"
log "cached: $entry"
report
