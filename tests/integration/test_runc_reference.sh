#!/bin/bash
# Reference behaviour of an OCI runtime, checked on runc: the expectations
# the kata-run agent must meet too.  Every case is a function taking the
# runner ("runc" or "agent", see tests/lib/diff.sh), so the same cases run
# against the agent once it lands:
#
#   tests/integration/test_runc_reference.sh [runc] [agent]   (default runc)
#
# Needs root, runc, busybox-static, python3, util-linux (script, unshare)
# and build/tests/probe (`make build/tests/probe`).  Output is TAP, ending
# with "N passed, N failed, N skipped".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/bundle.sh
. "$here/../lib/bundle.sh"
# shellcheck source=tests/lib/diff.sh
. "$here/../lib/diff.sh"

# ---- helpers ---------------------------------------------------------------

# bundle NAME RUNNER [make_bundle options] -- ARGS: prints the bundle dir.
# Rootfs files are hard links to one template: cases must create files,
# never write into existing ones.
bundle() { template_bundle "$DIFF_TMP/bundles/$2-$1" "${@:3}"; }


out() { echo "$DIFF_TMP/out.$1"; }

# ---- cases -------------------------------------------------------------------

case_echo() {
	local r=$1 b
	b=$(bundle echo "$r" -- /bin/probe echo hello world)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "hello world" "$(out "$r")"
}

case_exit_code_3() {
	local r=$1 b
	b=$(bundle exit "$r" -- /bin/probe exit 3)
	run_with "$r" "$b"
	expect_status 3 "$(out "$r")"
	expect_stdout "" "$(out "$r")"
}

case_pid_is_1() {
	local r=$1 b
	b=$(bundle pid "$r" -- /bin/probe pid)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout 1 "$(out "$r")"
}

# runc adds HOME from /etc/passwd when the spec has none.
case_env() {
	local r=$1 b
	b=$(bundle env "$r" --env FOO=bar --env "HELLO=a b" --env TERM=dumb \
		-- /bin/probe env)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "FOO=bar
HELLO=a b
HOME=/root
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
TERM=dumb" "$(out "$r")"
}

case_cwd() {
	local r=$1 b
	b=$(bundle cwd "$r" --cwd /tmp -- /bin/probe cwd)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout /tmp "$(out "$r")"
}

# Supplementary groups are exactly additionalGids (runc also adds groups
# that list the user by name in /etc/group: ours lists nobody).
case_user_1000() {
	local r=$1 b
	b=$(bundle user "$r" --user 1000:1000 -- /bin/probe id)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "uid=1000 gid=1000 groups=" "$(out "$r")"
	b=$(bundle user-groups "$r" --user 1000:1000:10,20 -- /bin/probe id)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "uid=1000 gid=1000 groups=10,20" "$(out "$r")"
}

case_hostname() {
	local r=$1 b
	b=$(bundle hostname "$r" --hostname kr-test -- /bin/probe hostname)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout kr-test "$(out "$r")"
}

# runc spec's defaults: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE in
# bounding, effective, permitted and ambient; no_new_privs; RLIMIT_NOFILE
# 1024.  The kernel only raises an ambient cap that is also inheritable, and
# the spec has no inheritable set: CapAmb stays 0 (runc ignores the EPERM).
case_default_security() {
	local r=$1 b
	b=$(bundle security "$r" -- /bin/sh -c \
		'probe caps; probe nnp; probe seccomp; probe rlimit NOFILE')
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "CapEff=0000000020000420
CapPrm=0000000020000420
CapBnd=0000000020000420
CapInh=0000000000000000
CapAmb=0000000000000000
1
0
1024 1024" "$(out "$r")"
}

case_readonly_rootfs() {
	local r=$1 b
	b=$(bundle ro "$r" --readonly -- /bin/sh -c \
		'probe readonly /; probe write /foo x')
	run_with "$r" "$b"
	expect_status 1 "$(out "$r")"
	expect_stdout "ro
EROFS" "$(out "$r")"
	[[ ! -e $b/rootfs/foo ]] || fail "/foo was created"
}

# Masked files read empty.  /proc/kcore is in runc spec's maskedPaths but
# some kernels (this test host's) have no /proc/kcore: then it is ENOENT.
# /proc/timer_list is masked by default too; /etc/group by --mask.
case_masked_paths() {
	local r=$1 b kcore=0
	[[ -e /proc/kcore ]] || kcore=1
	# shellcheck disable=SC2016
	b=$(bundle masked "$r" --mask /etc/group -- /bin/sh -c '
		for f in /proc/kcore /proc/timer_list /etc/group; do
			probe cat $f >/tmp/o 2>/dev/null
			echo "$f $? $(wc -c </tmp/o)"
		done')
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "/proc/kcore $kcore 0
/proc/timer_list 0 0
/etc/group 0 0" "$(out "$r")"
}

# The container's init counts against pids.limit too: 10 - 1 forks succeed.
case_pids_limit() {
	local r=$1 b
	b=$(bundle pids "$r" --pids 10 -- /bin/probe forkbomb 30)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "forked=9 errno=EAGAIN" "$(out "$r")"
}

case_memory_limit() {
	local r=$1 b
	b=$(bundle mem-ok "$r" --memory $((32 << 20)) -- /bin/probe memhog 8)
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "done" "$(out "$r")"
	b=$(bundle mem-oom "$r" --memory $((32 << 20)) -- /bin/probe memhog 256)
	run_with "$r" "$b"
	expect_status 137 "$(out "$r")"
	expect_stdout "" "$(out "$r")"
}

case_seccomp_mkdir_eperm() {
	local r=$1 b
	b=$(bundle seccomp "$r" --seccomp "$SECCOMP_NO_MKDIR" -- /bin/sh -c \
		'probe seccomp; probe mkdir /tmp/x')
	run_with "$r" "$b"
	expect_status 1 "$(out "$r")"
	expect_stdout "2
EPERM" "$(out "$r")"
	[[ ! -e $b/rootfs/tmp/x ]] || fail "/tmp/x was created"
}

case_terminal() {
	local r=$1 b
	b=$(bundle tty "$r" --terminal -- /bin/sh -c \
		'probe isatty 0; probe isatty 1; probe isatty 2')
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "true
true
true" "$(out "$r")"
}

case_no_terminal() {
	local r=$1 b
	b=$(bundle notty "$r" -- /bin/sh -c \
		'probe isatty 0; probe isatty 1; probe isatty 2')
	run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "false
false
false" "$(out "$r")"
}

case_stdin() {
	local r=$1 b
	printf 'line one\nline two\n' >"$DIFF_TMP/stdin.txt"
	b=$(bundle stdin "$r" -- /bin/probe stdin-cat)
	RUN_STDIN=$DIFF_TMP/stdin.txt run_with "$r" "$b"
	expect_status 0 "$(out "$r")"
	expect_stdout "line one
line two" "$(out "$r")"
}

# sh as PID 1 has no SIGTERM handler: the kernel drops the signal.  SIGKILL
# from outside ends it: 128 + 9.
case_sh_pid1_ignores_sigterm() {
	local r=$1 b id
	id=kr-term-$$-$r
	b=$(bundle sh-term "$r" -- /bin/sh -c \
		'touch /tmp/ready; probe pause; echo unreachable')
	bg_start "$r" "$b" "$id"
	wait_file "$b/rootfs/tmp/ready"
	ctr_kill "$r" "$id" TERM
	sleep 1
	kill -0 "$BG_PID" 2>/dev/null || fail "the container ended on SIGTERM"
	ctr_running "$r" "$id" || fail "the container is not running"
	ctr_kill "$r" "$id" KILL
	bg_wait 10
	expect_status 137 "$BG_OUT"
	expect_stdout "" "$BG_OUT"
}

case_sigterm_handler() {
	local r=$1 b id
	id=kr-trap-$$-$r
	b=$(bundle trap-term "$r" -- /bin/probe trap-term /tmp/ready)
	bg_start "$r" "$b" "$id"
	wait_file "$b/rootfs/tmp/ready"
	ctr_kill "$r" "$id" TERM
	bg_wait 10
	expect_status 0 "$BG_OUT"
	expect_stdout "got SIGTERM" "$BG_OUT"
}

CASES=(
	case_echo case_exit_code_3 case_pid_is_1 case_env case_cwd
	case_user_1000 case_hostname case_default_security
	case_readonly_rootfs case_masked_paths case_pids_limit
	case_memory_limit case_seccomp_mkdir_eperm case_terminal
	case_no_terminal case_stdin case_sh_pid1_ignores_sigterm
	case_sigterm_handler
)

# ---- main ------------------------------------------------------------------

diff_init
test_fixtures

runners=("$@")
((${#runners[@]})) || runners=(runc)
for runner in "${runners[@]}"; do
	case $runner in
	runc)
		for c in "${CASES[@]}"; do tap_case runc "$c"; done
		;;
	agent)
		# shellcheck disable=SC2119 # no extra agent arguments
		if ! start_agent; then
			for c in "${CASES[@]}"; do
				tap_result "agent: $(tr _ " " <<<"${c#case_}")" 77 "the agent does not start"
			done
			continue
		fi
		for c in "${CASES[@]}"; do tap_case agent "$c"; done
		rc=0
		stop_agent || rc=$?
		tap_result "agent: leaves nothing behind" "$rc"
		;;
	*)
		echo "usage: $0 [runc] [agent]" >&2
		exit 2
		;;
	esac
done
tap_done
