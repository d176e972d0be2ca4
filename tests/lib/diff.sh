# shellcheck shell=bash
# Differential test helpers: run one OCI bundle under runc and under the
# kata-run agent (on the host, through build/kr-agent-ctl) and compare what
# the container printed and how it ended.  Source after bundle.sh:
#
#   diff_init                       scratch dir $DIFF_TMP, EXIT trap cleans up
#   run_runc  BUNDLE [OUT]          OUT/stdout OUT/stderr OUT/status
#   run_agent BUNDLE [OUT]          same through `kr-agent-ctl run`
#   run_with  RUNNER BUNDLE [OUT]   RUNNER is runc or agent
#   compare   [OUT_A OUT_B]         diff stdout and status; 1 if they differ
#   start_agent [AGENT_ARGS...] / stop_agent   (see below)
#   bg_start RUNNER BUNDLE ID [OUT] / bg_wait [SEC] / ctr_kill RUNNER ID SIG
#   ctr_running RUNNER ID
#   tap_case RUNNER FUNC / tap_done  TAP output, summary "N passed, ..."
#
# OUT defaults to $DIFF_TMP/out.RUNNER.  stdin is $RUN_STDIN (default
# /dev/null).  Every run is bounded by $RUN_TIMEOUT seconds (default 60;
# status 124 on timeout).  Bundles with process.terminal run under
# `script` (util-linux) so runc gets a real tty; their stdin is an empty
# pipe held open (script would turn EOF into a NUL that the container's
# tty echoes as "^@"), and stdout gets CRLF turned into LF.

KR_ROOT=${KR_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KR_BUILD=${KR_BUILD:-$KR_ROOT/build}
AGENT_BIN=${AGENT_BIN:-$KR_BUILD/kata-agent}
AGENT_CTL=${AGENT_CTL:-$KR_BUILD/kr-agent-ctl}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
DIFF_TMP=${DIFF_TMP:-}
AGENT_PID=

diff_init() {
	if [[ -z $DIFF_TMP ]]; then
		DIFF_TMP=$(mktemp -d /tmp/kr-diff.XXXXXX) || return 1
		trap diff_cleanup EXIT
	fi
	RUNC_ROOT=${RUNC_ROOT:-$DIFF_TMP/runc-root}
}

# Leaves nothing behind: runc containers, the agent, the scratch dir.
diff_cleanup() {
	local id
	[[ -n $DIFF_TMP && -d $DIFF_TMP ]] || return 0
	if [[ -n $AGENT_PID ]]; then
		stop_agent >&2 || true
	fi
	if [[ -d $RUNC_ROOT ]]; then
		for id in $("$RUNC" --root "$RUNC_ROOT" list -q 2>/dev/null); do
			"$RUNC" --root "$RUNC_ROOT" delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	if grep -q " $DIFF_TMP" /proc/self/mountinfo; then
		echo "# diff_cleanup: mounts left under $DIFF_TMP, not removing it" >&2
		return 1
	fi
	rm -rf "$DIFF_TMP"
}

# _run_capture OUT TERMINAL CMD...: the common half of run_runc/run_agent.
_run_capture() {
	local out=$1 term=$2 st=0 fifo
	shift 2
	mkdir -p "$out"
	if [[ $term == yes ]]; then
		fifo=$out/stdin.fifo
		rm -f "$fifo"
		mkfifo "$fifo" || return 1
		exec {_kr_fd}<>"$fifo"
		timeout -k 5 "$RUN_TIMEOUT" script -qec "$(printf '%q ' "$@")" \
			/dev/null <&"$_kr_fd" >"$out/stdout.raw" 2>"$out/stderr" || st=$?
		exec {_kr_fd}>&-
		rm -f "$fifo"
		tr -d '\r' <"$out/stdout.raw" >"$out/stdout"
	else
		timeout -k 5 "$RUN_TIMEOUT" "$@" <"${RUN_STDIN:-/dev/null}" \
			>"$out/stdout" 2>"$out/stderr" || st=$?
	fi
	echo "$st" >"$out/status"
}

run_runc() {
	local bundle=${1:?run_runc BUNDLE [OUT]} out=${2:-$DIFF_TMP/out.runc}
	local id=kr-$$-$RANDOM term=no
	bundle_terminal "$bundle" && term=yes
	rm -rf "$out"
	_run_capture "$out" "$term" "$RUNC" --root "$RUNC_ROOT" run \
		--bundle "$bundle" "$id"
	# A timeout leaves the container behind.
	"$RUNC" --root "$RUNC_ROOT" delete -f "$id" >/dev/null 2>&1 || true
}

run_agent() {
	local bundle=${1:?run_agent BUNDLE [OUT]} out=${2:-$DIFF_TMP/out.agent}
	local id=kr-$$-$RANDOM term=no
	bundle_terminal "$bundle" && term=yes
	rm -rf "$out"
	_run_capture "$out" "$term" "$AGENT_CTL" -s "$AGENT_SOCK" run \
		--id "$id" "$bundle"
	"$AGENT_CTL" -s "$AGENT_SOCK" -t 5 rm "$id" >/dev/null 2>&1 || true
}

run_with() {
	case $1 in
	runc) run_runc "${@:2}" ;;
	agent) run_agent "${@:2}" ;;
	*) echo "run_with: unknown runner $1" >&2; return 2 ;;
	esac
}

compare() {
	local a=${1:-$DIFF_TMP/out.runc} b=${2:-$DIFF_TMP/out.agent} rc=0
	if ! diff -u --label "$a/stdout" --label "$b/stdout" \
		"$a/stdout" "$b/stdout"; then
		rc=1
	fi
	if [[ $(<"$a/status") != "$(<"$b/status")" ]]; then
		echo "exit status: $(<"$a/status") ($a) vs $(<"$b/status") ($b)"
		rc=1
	fi
	if ((rc)); then
		echo "--- stderr $a:"; cat "$a/stderr"
		echo "--- stderr $b:"; cat "$b/stderr"
	fi
	return $rc
}

# ---- background containers (signals, state) ------------------------------

# bg_start RUNNER BUNDLE ID [OUT]: `run` in the background (no terminal);
# BG_PID is the client (runc or kr-agent-ctl), BG_OUT where bg_wait writes.
bg_start() {
	local runner=$1 bundle=$2 id=$3
	BG_OUT=${4:-$DIFF_TMP/bg.$runner}
	rm -rf "$BG_OUT" && mkdir -p "$BG_OUT"
	local -a cmd
	case $runner in
	runc) cmd=("$RUNC" --root "$RUNC_ROOT" run --bundle "$bundle" "$id") ;;
	agent) cmd=("$AGENT_CTL" -s "$AGENT_SOCK" run --id "$id" "$bundle") ;;
	*) echo "bg_start: unknown runner $runner" >&2; return 2 ;;
	esac
	"${cmd[@]}" <"${RUN_STDIN:-/dev/null}" >"$BG_OUT/stdout" 2>"$BG_OUT/stderr" &
	BG_PID=$!
}

# bg_wait [SEC]: wait for the background run, bounded; status in BG_OUT.
bg_wait() {
	local limit=$((${1:-$RUN_TIMEOUT} * 20)) i st=0
	for ((i = 0; i < limit; i++)); do
		kill -0 "$BG_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$BG_PID" 2>/dev/null; then
		kill -KILL "$BG_PID" 2>/dev/null || true
		st=124
		wait "$BG_PID" 2>/dev/null || true
	else
		wait "$BG_PID" || st=$?
	fi
	echo "$st" >"$BG_OUT/status"
	return 0
}

_signum() {
	[[ $1 =~ ^[0-9]+$ ]] && { echo "$1"; return; }
	kill -l "${1#SIG}"
}

# ctr_kill RUNNER ID SIG [--all]
ctr_kill() {
	local runner=$1 id=$2 sig all=()
	sig=$(_signum "$3") || return 2
	[[ ${4:-} == --all ]] && all=(--all)
	case $runner in
	runc) "$RUNC" --root "$RUNC_ROOT" kill "${all[@]}" "$id" "$sig" ;;
	agent) "$AGENT_CTL" -s "$AGENT_SOCK" -t 10 kill "${all[@]}" "$id" "$sig" ;;
	esac
}

# ctr_running RUNNER ID: the container exists and its process is running.
ctr_running() {
	case $1 in
	runc) "$RUNC" --root "$RUNC_ROOT" state "$2" 2>/dev/null |
		grep -q '"status": "running"' ;;
	agent) "$AGENT_CTL" -s "$AGENT_SOCK" -t 5 ps "$2" >/dev/null 2>&1 ;;
	esac
}

# wait_running RUNNER ID [SEC]: poll ctr_running, bounded.
wait_running() {
	local i
	for ((i = 0; i < ${3:-10} * 20; i++)); do
		ctr_running "$1" "$2" && return 0
		sleep 0.05
	done
	return 1
}

# ---- the agent on the host ---------------------------------------------------
#
# start_agent [ARGS...]: runs build/kata-agent in a private mount namespace
# (unshare -m --propagation private) whose state dir is a tmpfs mounted only
# there, with a cgroup prefix unique to this run.  Sets AGENT_PID,
# AGENT_SOCK, AGENT_STATE, AGENT_CG_PREFIX, AGENT_LOG.  Waits (bounded by
# $AGENT_START_TIMEOUT, default 10 s) until the socket accepts.  The log
# level is $AGENT_LOG_LEVEL (default debug); the log is $AGENT_LOG.

_mount_marks() {
	grep -F -e "$DIFF_TMP" -e kata-run /proc/self/mountinfo || true
}

_sock_accepts() {
	"$PYTHON" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(1)
s.connect(sys.argv[1])' "$1" 2>/dev/null
}

start_agent() {
	local i limit=$((${AGENT_START_TIMEOUT:-10} * 20))
	diff_init || return 1
	if [[ ! -x $AGENT_BIN || ! -x $AGENT_CTL ]]; then
		echo "start_agent: build $AGENT_BIN and $AGENT_CTL first" >&2
		return 1
	fi
	AGENT_SOCK=$DIFF_TMP/agent.sock
	AGENT_STATE=$DIFF_TMP/agent-state
	AGENT_LOG=$DIFF_TMP/agent.log
	AGENT_CG_PREFIX=krtest-$$-$RANDOM
	mkdir -p "$AGENT_STATE"
	_kr_mounts_before=$(_mount_marks)
	# shellcheck disable=SC2016
	unshare -m --propagation private -- /bin/sh -c \
		'mount -t tmpfs -o mode=0700 kr-agent-state "$1" && shift && exec "$@"' \
		sh "$AGENT_STATE" "$AGENT_BIN" --listen "unix:$AGENT_SOCK" \
		--state-dir "$AGENT_STATE" --cgroup-root /sys/fs/cgroup \
		--cgroup-prefix "$AGENT_CG_PREFIX" \
		--log-level "${AGENT_LOG_LEVEL:-debug}" "$@" \
		</dev/null >"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	for ((i = 0; i < limit; i++)); do
		if ! kill -0 "$AGENT_PID" 2>/dev/null; then
			echo "start_agent: the agent exited; log:" >&2
			tail -n 20 "$AGENT_LOG" >&2
			wait "$AGENT_PID" 2>/dev/null || true
			AGENT_PID=
			return 1
		fi
		[[ -S $AGENT_SOCK ]] && _sock_accepts "$AGENT_SOCK" && return 0
		sleep 0.05
	done
	echo "start_agent: socket $AGENT_SOCK not accepting after ${AGENT_START_TIMEOUT:-10} s" >&2
	stop_agent >&2 || true
	return 1
}

_diag() { sed 's/^/#   /'; }   # indent stdin as TAP diagnostics

# Prints "PID STARTTIME" of every descendant of $1 (breadth first).
_descendants() {
	local f line rest pid
	local -A kids=() start=()
	local -a fields queue=("$1")
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		pid=${f#/proc/}; pid=${pid%/stat}
		rest=${line##*) }   # comm may hold spaces and parentheses
		read -r -a fields <<<"$rest"
		kids[${fields[1]}]+=" $pid"
		start[$pid]=${fields[19]}
	done
	while ((${#queue[@]})); do
		for pid in ${kids[${queue[0]}]:-}; do
			echo "$pid ${start[$pid]}"
			queue+=("$pid")
		done
		queue=("${queue[@]:1}")
	done
}

_alive_same() {   # PID STARTTIME: the same process still exists
	local line rest
	local -a fields
	read -r line 2>/dev/null <"/proc/$1/stat" || return 1
	rest=${line##*) }
	read -r -a fields <<<"$rest"
	[[ ${fields[19]} == "$2" && ${fields[0]} != Z ]]
}

# stop_agent: checks the agent is idle (no container processes, no mounts
# but its state tmpfs in its namespace; skipped with AGENT_ALLOW_BUSY=1),
# asks it to `destroy`, stops it (TERM, then KILL after 5 s), then checks
# that nothing is left: none of its former descendants alive, no new mounts
# naming $DIFF_TMP or kata-run in our namespace, no cgroup named with
# $AGENT_CG_PREFIX.  Leftovers are reported on stdout ("# ..."), then
# removed where possible; returns 1 if there were any.
stop_agent() {
	local rc=0 i pid st procs ns_mounts new_mounts cgs
	[[ -n $AGENT_PID ]] || return 0
	procs=$(_descendants "$AGENT_PID")
	ns_mounts=$(grep -F "$DIFF_TMP" "/proc/$AGENT_PID/mountinfo" 2>/dev/null |
		awk -v s="$AGENT_STATE" '$5 != s' || true)
	if [[ ${AGENT_ALLOW_BUSY:-0} != 1 ]]; then
		if [[ -n $procs ]]; then
			echo "# agent not idle at stop: descendants:"
			while read -r pid st; do
				echo "#   $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
			done <<<"$procs"
			rc=1
		fi
		if [[ -n $ns_mounts ]]; then
			echo "# agent not idle at stop: mounts in its namespace:"
			_diag <<<"$ns_mounts"
			rc=1
		fi
	fi
	"$AGENT_CTL" -s "$AGENT_SOCK" -t 10 destroy >/dev/null 2>&1 || true
	kill -TERM "$AGENT_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$AGENT_PID" 2>/dev/null || true
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=
	rm -f "$AGENT_SOCK"

	# Processes die asynchronously after a SIGKILL: give them 2 s.
	local -a left=()
	for ((i = 0; i < 40; i++)); do
		left=()
		while read -r pid st; do
			[[ -n $pid ]] && _alive_same "$pid" "$st" && left+=("$pid")
		done <<<"$procs"
		((${#left[@]})) || break
		sleep 0.05
	done
	if ((${#left[@]})); then
		echo "# agent left processes behind: ${left[*]}"
		for pid in "${left[@]}"; do
			echo "#   $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
		done
		kill -KILL "${left[@]}" 2>/dev/null || true
		rc=1
	fi

	new_mounts=$(comm -13 <(sort <<<"$_kr_mounts_before") <(_mount_marks | sort))
	if [[ -n ${new_mounts//[[:space:]]/} ]]; then
		echo "# agent left mounts in the host namespace:"
		_diag <<<"$new_mounts"
		rc=1
	fi

	for ((i = 0; i < 40; i++)); do
		cgs=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d \
			-name "*$AGENT_CG_PREFIX*" 2>/dev/null || true)
		[[ -z $cgs ]] && break
		sleep 0.05
	done
	if [[ -n $cgs ]]; then
		echo "# agent left cgroups:"
		_diag <<<"$cgs"
		# Deepest first; only empty cgroups can go.
		sort -r <<<"$cgs" | while read -r d; do
			rmdir "$d" 2>/dev/null || true
		done
		rc=1
	fi
	return $rc
}

# ---- TAP -------------------------------------------------------------------
#
# tap_case RUNNER FUNC: runs FUNC RUNNER in a subshell with errexit, so a
# failed check ends the case; the case prints diagnostics as "# ..." lines
# and calls `skip REASON` to skip.  tap_done prints the plan and the summary
# line "N passed, N failed, N skipped" and returns 1 if any failed.

TAP_N=0 TAP_PASS=0 TAP_FAIL=0 TAP_SKIP=0

skip() {
	echo "$*" >"$DIFF_TMP/skip.reason"
	exit 77
}

# fail MESSAGE: ends the case with a diagnostic.
fail() {
	echo "# $*"
	exit 1
}

tap_result() {   # NAME RC [REASON]
	TAP_N=$((TAP_N + 1))
	case $2 in
	0) echo "ok $TAP_N - $1"; TAP_PASS=$((TAP_PASS + 1)) ;;
	77) echo "ok $TAP_N - $1 # SKIP ${3:-}"; TAP_SKIP=$((TAP_SKIP + 1)) ;;
	*) echo "not ok $TAP_N - $1"; TAP_FAIL=$((TAP_FAIL + 1)) ;;
	esac
}

tap_case() {
	local runner=$1 fn=$2 rc=0 name=${2#case_} errexit=$-
	rm -f "$DIFF_TMP/skip.reason"
	# errexit is ignored inside a subshell that is part of a || list, so
	# run it as a plain command with errexit off out here.
	set +e
	(set -e; "$fn" "$runner")
	rc=$?
	[[ $errexit == *e* ]] && set -e
	tap_result "$runner: ${name//_/ }" "$rc" \
		"$(cat "$DIFF_TMP/skip.reason" 2>/dev/null)"
}

tap_done() {
	echo "1..$TAP_N"
	echo "$TAP_PASS passed, $TAP_FAIL failed, $TAP_SKIP skipped"
	((TAP_FAIL == 0))
}

# ---- expectations on a run's OUT dir (default $DIFF_TMP/out.RUNNER) -------

expect_status() {   # WANT OUT
	local got
	got=$(<"$2/status")
	[[ $got == "$1" ]] && return 0
	echo "# exit status: want $1, got $got; stderr:"
	_diag <"$2/stderr"
	return 1
}

expect_stdout() {   # WANT OUT  (WANT may have several lines)
	local got
	got=$(<"$2/stdout")
	[[ $got == "$1" ]] && return 0
	echo "# stdout differs (want, got):"
	diff <(printf '%s\n' "$1") <(printf '%s\n' "$got") | _diag
	echo "# stderr:"
	_diag <"$2/stderr"
	return 1
}

# ---- shared by the test scripts -------------------------------------------

# test_fixtures: the template rootfs ($ROOTFS) that template_bundle links
# from, and a seccomp profile making mkdir fail with EPERM
# ($SECCOMP_NO_MKDIR).  Call after diff_init.
test_fixtures() {
	ROOTFS=$DIFF_TMP/rootfs
	make_rootfs "$ROOTFS"
	SECCOMP_NO_MKDIR=$DIFF_TMP/seccomp-no-mkdir.json
	cat >"$SECCOMP_NO_MKDIR" <<'JSON'
{
 "defaultAction": "SCMP_ACT_ALLOW",
 "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
 "syscalls": [
  {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
 ]
}
JSON
}

# template_bundle DIR [make_bundle options] -- ARGS: a fresh bundle at DIR
# whose rootfs files are hard links to $ROOTFS: containers may create
# files, never write into existing ones.  Prints DIR.
template_bundle() {
	local b=$1
	shift
	rm -rf "$b"
	make_bundle "$b" --rootfs-from "$ROOTFS" "$@" >&2 || return 1
	echo "$b"
}

# wait_file PATH [SEC]: bounded wait for a container to create PATH.
wait_file() {
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		[[ -e $1 ]] && return 0
		sleep 0.05
	done
	echo "# $1 never appeared"
	return 1
}

# select_cases [NAME...]: keep only the named cases in CASES (with or
# without the "case_" prefix); no names keeps them all.
select_cases() {
	(($#)) || return 0
	CASES=()
	local c
	for c in "$@"; do
		c=case_${c#case_}
		declare -F "$c" >/dev/null || { echo "$0: no case $c" >&2; exit 2; }
		CASES+=("$c")
	done
}

# todo REASON: a case calls it before checks that fail for a known,
# reported bug; todo_case then reports "not ok ... # TODO REASON" (still
# counted as failed).
todo() { echo "$*" >"$DIFF_TMP/todo.reason"; }

# todo_case LABEL FN [SETUP]: run case FN (errexit on, in a subshell, after
# the shell code SETUP) and report it as "LABEL: name", with `skip` and
# `todo` honoured.
todo_case() {
	local label=$1 fn=$2 setup=${3:-:} rc name=${2#case_}
	name=${name//_/ }
	rm -f "$DIFF_TMP/skip.reason" "$DIFF_TMP/todo.reason"
	set +e
	(set -e; eval "$setup"; "$fn")
	rc=$?
	set -e
	if ((rc != 0 && rc != 77)) && [[ -s $DIFF_TMP/todo.reason ]]; then
		TAP_N=$((TAP_N + 1)) TAP_FAIL=$((TAP_FAIL + 1))
		echo "not ok $TAP_N - $label: $name # TODO $(<"$DIFF_TMP/todo.reason")"
		return
	fi
	tap_result "$label: $name" "$rc" "$(cat "$DIFF_TMP/skip.reason" 2>/dev/null)"
}
