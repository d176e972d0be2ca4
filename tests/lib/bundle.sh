# shellcheck shell=bash
# OCI bundle helpers for the integration tests and benchmarks.  Source it:
#
#   . tests/lib/bundle.sh
#   make_rootfs DIR
#       busybox-static + applet links, /bin/probe, /etc/passwd and /etc/group
#       (root and user 1000), empty proc sys dev tmp.
#   make_bundle DIR [OPTIONS] -- ARGS...
#       DIR/rootfs (make_rootfs) and DIR/config.json: `runc spec` edited with
#       python3's json module.  Options:
#         --terminal          process.terminal = true (default false)
#         --readonly          root.readonly = true (default false)
#         --cwd D             process.cwd
#         --env K=V           add or replace one variable (repeatable)
#         --user U:G[:G2,..]  process.user uid, gid and additionalGids
#         --hostname H        hostname
#         --memory BYTES      linux.resources.memory.limit
#         --pids N            linux.resources.pids.limit
#         --seccomp FILE      linux.seccomp = the JSON object in FILE
#         --mask PATH         add to linux.maskedPaths (repeatable)
#         --no-resources      drop linux.resources (benchmarks without cgroups)
#         --rootfs-from DIR   hard-link DIR's files instead of building a rootfs
#       runc's default namespaces (including network) are kept.
#
# Environment: PROBE (default build/tests/probe), BUSYBOX (default
# /bin/busybox, must be static), RUNC (default /usr/sbin/runc), PYTHON
# (default /usr/bin/python3).

KR_ROOT=${KR_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PROBE=${PROBE:-$KR_ROOT/build/tests/probe}
BUSYBOX=${BUSYBOX:-/bin/busybox}
RUNC=${RUNC:-/usr/sbin/runc}
PYTHON=${PYTHON:-/usr/bin/python3}

KR_APPLETS=(sh echo cat ls sleep true false id env pwd hostname kill ps mount
	test wc head stat touch mkdir grep)

make_rootfs() {
	local dir=${1:?make_rootfs DIR} a
	if [[ ! -x $PROBE ]]; then
		echo "make_rootfs: no probe at $PROBE (make build/tests/probe)" >&2
		return 1
	fi
	if [[ ! -x $BUSYBOX ]]; then
		echo "make_rootfs: no busybox at $BUSYBOX (apt-get install busybox-static)" >&2
		return 1
	fi
	mkdir -p "$dir"/{bin,etc,proc,sys,dev,tmp,root,home/user} || return 1
	chmod 1777 "$dir/tmp"
	chown 1000:1000 "$dir/home/user"
	cp "$BUSYBOX" "$dir/bin/busybox" || return 1
	cp "$PROBE" "$dir/bin/probe" || return 1
	for a in "${KR_APPLETS[@]}"; do
		ln -sf busybox "$dir/bin/$a" || return 1
	done
	cat >"$dir/etc/passwd" <<-'EOF'
	root:x:0:0:root:/root:/bin/sh
	user:x:1000:1000:user:/home/user:/bin/sh
	EOF
	cat >"$dir/etc/group" <<-'EOF'
	root:x:0:
	user:x:1000:
	EOF
}

# The python half of make_bundle: argparse mirrors the shell options, so the
# container's argv after "--" reaches json untouched by shell quoting.
# shellcheck disable=SC2016
KR_BUNDLE_PY='
import argparse, json, sys
p = argparse.ArgumentParser(prog="make_bundle")
p.add_argument("config")
p.add_argument("--terminal", action="store_true")
p.add_argument("--readonly", action="store_true")
p.add_argument("--cwd")
p.add_argument("--env", action="append", default=[])
p.add_argument("--user")
p.add_argument("--hostname")
p.add_argument("--memory", type=int)
p.add_argument("--pids", type=int)
p.add_argument("--seccomp")
p.add_argument("--mask", action="append", default=[])
p.add_argument("--no-resources", action="store_true")
p.add_argument("args", nargs="+")
o = p.parse_args()
with open(o.config) as f:
    c = json.load(f)
pr = c["process"]
pr["args"] = o.args
pr["terminal"] = o.terminal
c["root"]["readonly"] = o.readonly
if o.cwd:
    pr["cwd"] = o.cwd
for kv in o.env:
    k = kv.split("=", 1)[0] + "="
    pr["env"] = [e for e in pr["env"] if not e.startswith(k)] + [kv]
if o.user:
    f = o.user.split(":")
    pr["user"] = {"uid": int(f[0]), "gid": int(f[1] if len(f) > 1 else f[0])}
    if len(f) > 2 and f[2]:
        pr["user"]["additionalGids"] = [int(g) for g in f[2].split(",")]
if o.hostname:
    c["hostname"] = o.hostname
lx = c["linux"]
res = lx.setdefault("resources", {})
if o.memory is not None:
    res.setdefault("memory", {})["limit"] = o.memory
if o.pids is not None:
    res["pids"] = {"limit": o.pids}
if o.no_resources:
    lx.pop("resources", None)
if o.seccomp:
    with open(o.seccomp) as f:
        lx["seccomp"] = json.load(f)
lx["maskedPaths"] = lx.get("maskedPaths", []) + o.mask
with open(o.config, "w") as f:
    json.dump(c, f, indent=1)
    f.write("\n")
'

make_bundle() {
	local dir=${1:?make_bundle DIR [OPTIONS] -- ARGS...} from=
	shift
	local -a opts=()
	while (($#)); do
		case $1 in
		--) break ;;
		--rootfs-from) from=${2:?--rootfs-from DIR}; shift 2 ;;
		--terminal | --readonly | --no-resources) opts+=("$1"); shift ;;
		--cwd | --env | --user | --hostname | --memory | --pids | --seccomp | --mask)
			opts+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
		*) echo "make_bundle: unknown option $1" >&2; return 2 ;;
		esac
	done
	if [[ ${1:-} != -- || $# -lt 2 ]]; then
		echo "make_bundle: need -- ARGS... (the container's command)" >&2
		return 2
	fi
	shift
	mkdir -p "$dir" || return 1
	rm -f "$dir/config.json"
	if [[ -n $from ]]; then
		cp -al "$from" "$dir/rootfs" || return 1
	else
		make_rootfs "$dir/rootfs" || return 1
	fi
	"$RUNC" spec --bundle "$dir" || return 1
	"$PYTHON" -c "$KR_BUNDLE_PY" "$dir/config.json" "${opts[@]}" -- "$@"
}

# bundle_terminal BUNDLE: succeeds if config.json asks for a terminal.
bundle_terminal() {
	"$PYTHON" -c 'import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["process"].get("terminal") else 1)' \
		"${1:?bundle_terminal BUNDLE}/config.json"
}
