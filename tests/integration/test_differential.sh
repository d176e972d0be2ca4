#!/bin/bash
# Differential test: the SAME bundle runs under runc and through the
# kata-run agent (run_runc / run_agent, tests/lib/diff.sh); what the
# container printed on stdout and its exit status must be byte for byte
# the same (compare).  On a difference the case prints the diff and both
# stderrs as TAP diagnostics.
#
#   tests/integration/test_differential.sh [CASE...]   (default: all)
#
# Under the ASan build:
#
#   AGENT_BIN=build-asan/kata-agent AGENT_CTL=build-asan/kr-agent-ctl \
#       tests/integration/test_differential.sh
#
# Needs root, runc, busybox-static, python3, util-linux (script, unshare)
# and build/tests/probe.  Output is TAP, ending with "N passed, N failed, N
# skipped"; the exit status is non-zero if any case failed.  A case that
# fails for a known, reported agent bug is printed "not ok ... # TODO
# REASON" (see `todo`) and still counts as failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/bundle.sh
. "$here/../lib/bundle.sh"
# shellcheck source=tests/lib/diff.sh
. "$here/../lib/diff.sh"

# ---- helpers ---------------------------------------------------------------

# bundle NAME [make_bundle options] -- ARGS: prints the bundle dir, shared
# by both runners.  The rootfs files are hard links to one template: a
# container may create files, never write into existing ones.
bundle() { template_bundle "$DIFF_TMP/bundles/$1" "${@:2}"; }

# edit BUNDLE PYTHON: run PYTHON on the bundle's config.json, loaded as `c`
# (for the spec fields make_bundle has no option for).
edit() {
	"$PYTHON" -c 'import json, sys
p = sys.argv[1] + "/config.json"
with open(p) as f:
    c = json.load(f)
exec(sys.argv[2])
with open(p, "w") as f:
    json.dump(c, f, indent=1)' "$1" "$2"
}

RUNC_OUT='' AGENT_OUT=''

# both BUNDLE: run it under runc and through the agent.
both() {
	RUNC_OUT=$DIFF_TMP/out.runc AGENT_OUT=$DIFF_TMP/out.agent
	run_runc "$1" "$RUNC_OUT"
	run_agent "$1" "$AGENT_OUT"
}

# same: compare the last `both`, diff as diagnostics.
same() {
	local d=$DIFF_TMP/compare.txt
	compare "$RUNC_OUT" "$AGENT_OUT" >"$d" 2>&1 && return 0
	_diag <"$d"
	return 1
}

# want_runc STATUS [STDOUT]: the reference itself is what the case means
# to test (so that "both fail the same way" cannot pass unnoticed).
want_runc() {
	expect_status "$1" "$RUNC_OUT"
	if (($# > 1)); then
		expect_stdout "$2" "$RUNC_OUT"
	fi
}

# diff_case BUNDLE STATUS [STDOUT]: both, runc as expected, agent the same.
diff_case() {
	both "$1"
	same
	want_runc "${@:2}"
}

run_case() { todo_case "runc vs agent" "$1"; }

# ---- cases -------------------------------------------------------------------

case_echo() {
	diff_case "$(bundle echo -- /bin/probe echo hello "two  spaces" world)" \
		0 "hello two  spaces world"
}

case_echo_shell() {
	# shellcheck disable=SC2016
	diff_case "$(bundle echo-sh -- /bin/sh -c 'echo "$0 $#"; echo $((6 * 7))')" \
		0 "/bin/sh 0
42"
}

case_exit_codes() {
	local n
	for n in 0 1 3 42; do
		diff_case "$(bundle "exit-$n" -- /bin/probe exit "$n")" "$n" ""
	done
	# sh's exit of its own, and the status of a missing command (127)
	diff_case "$(bundle exit-sh -- /bin/sh -c 'exit 200')" 200 ""
	diff_case "$(bundle exit-127 -- /bin/sh -c 'no-such-command')" 127 ""
}

# Death by a signal: 128 + N.  The fault is real (the PID 1 of a pid
# namespace ignores a kill(2) of its own); under sh, so not PID 1.
case_exit_by_signal() {
	diff_case "$(bundle segv -- /bin/sh -c 'probe kill-self SEGV; echo after $?')" \
		0 "after 139"
	diff_case "$(bundle segv1 -- /bin/probe kill-self SEGV)" 139 ""
}

case_id_root() {
	diff_case "$(bundle id-root -- /bin/probe id)" 0 "uid=0 gid=0 groups="
}

case_id_user_with_groups() {
	diff_case "$(bundle id-user --user 1000:1000:10,20,1000 -- /bin/probe id)" \
		0 "uid=1000 gid=1000 groups=10,20,1000"
	diff_case "$(bundle id-user2 --user 1000:100 -- /bin/probe id)" \
		0 "uid=1000 gid=100 groups="
}

case_env() {
	diff_case "$(bundle env --env FOO=bar --env "SPACED=a  b" --env EMPTY= \
		--env TERM=dumb -- /bin/probe env)" 0
	# HOME from /etc/passwd of the user, when the spec has none
	diff_case "$(bundle env-user --user 1000:1000 -- /bin/probe env)" 0
	grep -qx HOME=/home/user "$RUNC_OUT/stdout" || fail "runc: no HOME=/home/user"
	# and the spec's HOME wins
	diff_case "$(bundle env-home --env HOME=/tmp -- /bin/probe env)" 0
}

case_cwd() {
	diff_case "$(bundle cwd --cwd /tmp -- /bin/probe cwd)" 0 /tmp
	# a cwd that does not exist yet is created (runc does so)
	diff_case "$(bundle cwd-new --cwd /home/new/dir -- /bin/probe cwd)" 0 /home/new/dir
}

case_hostname() {
	diff_case "$(bundle hostname --hostname kr-diff-host -- /bin/sh -c \
		'probe hostname; hostname')" 0 "kr-diff-host
kr-diff-host"
}

# runc spec's capabilities (AUDIT_WRITE, KILL, NET_BIND_SERVICE), as root
# and as a user.
case_caps() {
	diff_case "$(bundle caps -- /bin/probe caps)" 0 "CapEff=0000000020000420
CapPrm=0000000020000420
CapBnd=0000000020000420
CapInh=0000000000000000
CapAmb=0000000000000000"
	diff_case "$(bundle caps-user --user 1000:1000 -- /bin/probe caps)" 0
}

# A hand-made capability set, ambient included (ambient needs inheritable).
case_caps_custom() {
	local b
	b=$(bundle caps-custom --user 1000:1000 -- /bin/probe caps)
	edit "$b" '
s = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
c["process"]["capabilities"] = {k: s for k in
    ("bounding", "effective", "permitted", "inheritable", "ambient")}'
	diff_case "$b" 0 "CapEff=0000000000202001
CapPrm=0000000000202001
CapBnd=0000000000202001
CapInh=0000000000202001
CapAmb=0000000000202001"
}

case_nnp() {
	diff_case "$(bundle nnp -- /bin/probe nnp)" 0 1
	local b
	b=$(bundle nnp-off -- /bin/probe nnp)
	edit "$b" 'c["process"]["noNewPrivileges"] = False'
	diff_case "$b" 0 0
}

case_rlimit() {
	diff_case "$(bundle rlimit -- /bin/probe rlimit NOFILE)" 0 "1024 1024"
	local b
	b=$(bundle rlimit2 -- /bin/sh -c \
		'probe rlimit NOFILE; probe rlimit NPROC; probe rlimit CORE')
	edit "$b" 'c["process"]["rlimits"] = [
 {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
 {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
 {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615}]'
	diff_case "$b" 0 "512 2048
100 200
0 unlimited"
}

case_oom_score_adj() {
	local b
	b=$(bundle oom-adj -- /bin/probe oom_score_adj)
	edit "$b" 'c["process"]["oomScoreAdj"] = 123'
	diff_case "$b" 0 123
	# (not a negative value: lowering it needs CAP_SYS_RESOURCE, which the
	# test hosts' root may lack; both runtimes then fail to start)
	b=$(bundle oom-adj-max -- /bin/probe oom_score_adj)
	edit "$b" 'c["process"]["oomScoreAdj"] = 1000'
	diff_case "$b" 0 1000
}

case_readonly_root() {
	local b
	b=$(bundle ro --readonly -- /bin/sh -c \
		'probe readonly /; probe readonly /tmp; probe readonly /dev/shm; probe write /foo x')
	diff_case "$b" 1 "ro
ro
rw
EROFS"
	[[ ! -e $b/rootfs/foo ]] || fail "/foo was created"
	b=$(bundle rw -- /bin/sh -c 'probe readonly /; probe readonly /proc/sys')
	diff_case "$b" 0 "rw
ro"
}

# Masked paths: files read empty, directories list empty; /proc/kcore is
# in runc spec's maskedPaths but absent on some kernels (then ENOENT on
# both sides).  Read-only paths refuse writes.
case_masked_paths() {
	local b kcore=0
	[[ -e /proc/kcore ]] || kcore=1
	# shellcheck disable=SC2016
	b=$(bundle masked --mask /etc/group --mask /home -- /bin/sh -c '
		for f in /proc/kcore /proc/timer_list /proc/keys /etc/group; do
			probe cat $f >/tmp/o 2>/dev/null
			echo "$f $? $(wc -c </tmp/o)"
		done
		probe ls /home; probe ls /proc/acpi; echo "ls $?"
		probe write /proc/sys/kernel/hostname x 2>/dev/null')
	diff_case "$b" 1 "/proc/kcore $kcore 0
/proc/timer_list 0 0
/proc/keys 0 0
/etc/group 0 0
ls 0
EROFS"
}

# ipc-namespaced sysctls from the spec.
case_sysctl() {
	local b
	b=$(bundle sysctl -- /bin/sh -c \
		'probe sysctl kernel.shmmax; probe sysctl fs.mqueue.msg_max; probe sysctl kernel/msgmax')
	edit "$b" 'c["linux"]["sysctl"] = {"kernel.shmmax": "123456789",
 "fs.mqueue.msg_max": "42", "kernel.msgmax": "4096"}'
	diff_case "$b" 0 "123456789
42
4096"
}

case_seccomp_mkdir_eperm() {
	local b
	b=$(bundle seccomp --seccomp "$SECCOMP_NO_MKDIR" -- /bin/sh -c \
		'probe seccomp; probe mkdir /tmp/x; echo "rc $?"; probe echo still here')
	diff_case "$b" 0 "2
EPERM
rc 1
still here"
	[[ ! -e $b/rootfs/tmp/x ]] || fail "/tmp/x was created"
}

# A default action other than allow, and SCMP_ACT_KILL_PROCESS.
case_seccomp_kill() {
	local b p=$DIFF_TMP/seccomp-kill.json
	cat >"$p" <<'EOF'
{
 "defaultAction": "SCMP_ACT_ALLOW",
 "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
 "syscalls": [
  {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"},
  {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
 ]
}
EOF
	b=$(bundle seccomp-kill --seccomp "$p" -- /bin/sh -c \
		'probe cwd; echo "cwd $?"; probe mkdir /tmp/y; echo "mkdir $?"')
	diff_case "$b" 0 "cwd 1
mkdir 159"
}

case_stdin() {
	local b
	printf 'one\ntwo\n\nthree' >"$DIFF_TMP/stdin.txt"
	b=$(bundle stdin -- /bin/probe stdin-cat)
	RUN_STDIN=$DIFF_TMP/stdin.txt diff_case "$b" 0 "one
two

three"
}

case_terminal() {
	diff_case "$(bundle tty --terminal -- /bin/sh -c \
		'probe isatty 0; probe isatty 1; probe isatty 2; exit 4')" 4 "true
true
true"
}

case_pids_limit() {
	diff_case "$(bundle pids --pids 12 -- /bin/probe forkbomb 40)" 0 \
		"forked=11 errno=EAGAIN"
}

case_memory_limit() {
	diff_case "$(bundle mem --memory $((32 << 20)) -- /bin/probe memhog 8)" 0 "done"
	diff_case "$(bundle mem-oom --memory $((32 << 20)) -- /bin/probe memhog 128)" 137 ""
}

# /dev: the same names (the agent binds the host's nodes where runc makes
# its own, see case_mounts; the names must still be the same).
case_dev_listing() {
	diff_case "$(bundle dev -- /bin/sh -c 'probe ls /dev; probe ls /dev/pts | grep -c ptmx')" 0
}

# probe mounts, filtered (see filter_mounts).
#
# Excluded, and why:
#  - /sys/fs/cgroup and below: on this cgroup v1 host runc mounts a tmpfs
#    and one read-only cgroup mount per hierarchy; the agent mounts only
#    cgroup2 (what its guest kernel has) and skips the mount on a v1 host
#    (agent/mounts.c do_cgroup).
#  - the device files /dev/{null,zero,full,random,urandom,tty}: runc mknods
#    them on the container's /dev tmpfs (no mount); the agent bind-mounts
#    the host's (guest's) nodes, one devtmpfs mount each.
#  - the fstype of masked files (/proc/kcore, /proc/keys, /proc/timer_list,
#    ...): both bind /dev/null over them, and that is a file of runc's /dev
#    tmpfs but the devtmpfs node for the agent; the line stays, with
#    "(masked)" for the fstype.
filter_mounts() {
	local f=$1/stdout
	awk '
		$1 ~ /^\/sys\/fs\/cgroup(\/|$)/ { next }
		$1 ~ /^\/dev\/(null|zero|full|random|urandom|tty)$/ { next }
		$1 ~ /^\/proc\/(kcore|keys|timer_list|latency_stats|sched_debug|scsi|timer_stats)$/ {
			$2 = "(masked)"
		}
		{ print }' "$f" >"$f.filtered"
	mv "$f.filtered" "$f"
}

case_mounts() {
	local b
	b=$(bundle mounts -- /bin/probe mounts)
	both "$b"
	filter_mounts "$RUNC_OUT"
	filter_mounts "$AGENT_OUT"
	same
	want_runc 0
	grep -q '^/proc proc rw$' "$RUNC_OUT/stdout" || fail "no /proc in runc's mounts"
	# readonly root and a bind mount from the spec
	mkdir -p "$DIFF_TMP/shared"
	echo shared-data >"$DIFF_TMP/shared/file"
	b=$(bundle mounts-ro --readonly -- /bin/sh -c 'probe mounts; cat /mnt/file')
	edit "$b" 'c["mounts"].append({"destination": "/mnt", "type": "bind",
 "source": "'"$DIFF_TMP/shared"'", "options": ["rbind", "ro"]})'
	both "$b"
	filter_mounts "$RUNC_OUT"
	filter_mounts "$AGENT_OUT"
	same
	want_runc 0
	grep -qx '/mnt ext4 ro' "$RUNC_OUT/stdout" || grep -q '^/mnt .* ro$' "$RUNC_OUT/stdout" ||
		fail "runc: /mnt is not a read-only mount"
	grep -qx shared-data "$RUNC_OUT/stdout" || fail "runc: /mnt/file not read"
}

# A user namespace with uid/gid mappings.  runc runs it here if the
# mapped root can reach the rootfs: $DIFF_TMP is made 0711 for it (main).
# The agent's set-up, too, runs as the mapped root under its state dir:
# the agent makes that 0711 when it creates it (as in the guest), but
# start_agent hands it a ready tmpfs mounted 0700; give it the guest's mode.
case_userns() {
	local b
	chmod 0711 "/proc/$AGENT_PID/root$AGENT_STATE"
	# shellcheck disable=SC2016
	b=$(bundle userns -- /bin/sh -c \
		'probe userns; cat /proc/self/gid_map; probe id; probe caps; probe write /tmp/w x; stat -c "%u %g" /tmp/w /bin/busybox')
	edit "$b" '
c["linux"]["namespaces"].append({"type": "user"})
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]'
	chmod 0755 "$b"
	chmod 1777 "$b/rootfs/tmp"
	both "$b"
	want_runc 0 "         0     100000      65536
         0     100000      65536
uid=0 gid=0 groups=
CapEff=0000000020000420
CapPrm=0000000020000420
CapBnd=0000000020000420
CapInh=0000000000000000
CapAmb=0000000000000000
0 0
65534 65534"
	same
}

CASES=(
	case_echo case_echo_shell case_exit_codes case_exit_by_signal
	case_id_root case_id_user_with_groups case_env case_cwd case_hostname
	case_caps case_caps_custom case_nnp case_rlimit case_oom_score_adj
	case_readonly_root case_masked_paths case_sysctl
	case_seccomp_mkdir_eperm case_seccomp_kill case_stdin case_terminal
	case_pids_limit case_memory_limit case_dev_listing case_mounts
	case_userns
)

# ---- main ------------------------------------------------------------------

select_cases "$@"

diff_init
# A user namespace's root (host uid 100000) must be able to traverse to the
# bundles (runc bind-mounts the rootfs from inside it).
chmod 0711 "$DIFF_TMP"
test_fixtures

# shellcheck disable=SC2119 # no extra agent arguments
if ! start_agent; then
	for c in "${CASES[@]}"; do
		tap_result "runc vs agent: $(tr _ " " <<<"${c#case_}")" 77 "the agent does not start"
	done
	tap_done
	exit 1
fi
for c in "${CASES[@]}"; do
	run_case "$c"
done
log=$AGENT_LOG
rc=0
stop_agent || rc=$?
tap_result "agent: leaves nothing behind" "$rc"
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: .*Sanitizer' "$log"; then
	echo "# sanitizer reports in the agent log:"
	grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -n 200 | _diag
	tap_result "agent: no sanitizer report in its log" 1
else
	tap_result "agent: no sanitizer report in its log" 0
fi
tap_done
