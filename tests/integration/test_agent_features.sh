#!/bin/bash
# Agent-only features, driven through kr-agent-ctl against one kata-agent
# running on the host (start_agent, tests/lib/diff.sh): exec (plain and
# with a tty), signals, wait, pause/resume, stats, ps, update, OOM events,
# rm and details.  runc has no equivalent for most of these, so they are
# checked against fixed expectations rather than compared.
#
#   tests/integration/test_agent_features.sh [CASE...]   (default: all)
#
# Each case creates its own container(s) and removes them on its way out,
# whatever happened (case_cleanup); the last two results check that the
# agent left nothing behind (stop_agent's process / mount / cgroup checks)
# and that its log holds no sanitizer report.  Run it under the ASan build
# with:
#
#   AGENT_BIN=build-asan/kata-agent AGENT_CTL=build-asan/kr-agent-ctl \
#       tests/integration/test_agent_features.sh
#
# Needs root, busybox-static, python3, util-linux (script, unshare) and
# build/tests/probe.  Output is TAP, ending with "N passed, N failed, N
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

# ctl ARGS...: kr-agent-ctl against the test agent, calls bounded.
ctl() { "$AGENT_CTL" -s "$AGENT_SOCK" -t "${CTL_TIMEOUT:-20}" "$@"; }

# ctl_out OUT ARGS...: ctl with OUT/stdout, OUT/stderr, OUT/status (the
# layout expect_status / expect_stdout read), bounded by RUN_TIMEOUT.
ctl_out() {
	local out=$1 st=0
	shift
	rm -rf "$out" && mkdir -p "$out"
	timeout -k 5 "$RUN_TIMEOUT" "$AGENT_CTL" -s "$AGENT_SOCK" -t 20 "$@" \
		</dev/null >"$out/stdout" 2>"$out/stderr" || st=$?
	echo "$st" >"$out/status"
}

# expect_stderr_has TEXT OUT: OUT/stderr contains TEXT (fixed string).
expect_stderr_has() {
	grep -qF -- "$1" "$2/stderr" && return 0
	echo "# stderr does not contain \"$1\"; it is:"
	_diag <"$2/stderr"
	return 1
}

# bundle NAME [make_bundle options] -- ARGS: prints the bundle dir.  The
# rootfs files are hard links to one template ($ROOTFS): containers may
# create files, never write into existing ones.  Not --overlay, so the
# host sees what a container writes under BUNDLE/rootfs.
bundle() { template_bundle "$DIFF_TMP/bundles/$1" "${@:2}"; }


# until_true SEC CMD...: poll CMD every 50 ms, bounded.
until_true() {
	local i limit=$(($1 * 20))
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# Per-case clean-up: containers named with track_id are removed and
# background jobs named with track_pid are killed when the case's subshell
# exits, however it exits.
CASE_IDS=() CASE_PIDS=()
track_id() { CASE_IDS+=("$1"); }
track_pid() { CASE_PIDS+=("$1"); }
# (Clients first: an exec client still waiting when its container goes
# is case_rm_while_exec_waited's business, not every case's.)
case_cleanup() {
	local id pid
	for pid in "${CASE_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	# (a dead agent would make every call wait for its timeout)
	kill -0 "$AGENT_PID" 2>/dev/null || return 0
	for id in "${CASE_IDS[@]}"; do
		ctl rm "$id" >/dev/null 2>&1 || true
	done
}

# up ID BUNDLE: create and start; INIT_PID is the init pid the agent
# reported (as the agent sees it: a host pid here).
up() {
	track_id "$1"
	INIT_PID=$(ctl create "$1" "$2") || fail "create $1 failed"
	[[ $INIT_PID =~ ^[0-9]+$ ]] || fail "create printed \"$INIT_PID\", not a pid"
	ctl start "$1" || fail "start $1 failed"
}

# json_get FILE KEY: one field of a kr-agent-ctl JSON reply.
json_get() {
	"$PYTHON" -c 'import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print(json.dumps(v) if isinstance(v, (list, dict, bool)) else v)' "$1" "$2"
}

# ps_pids ID: the pids `ps ID` lists, one a line.
ps_pids() {
	ctl ps "$1" | "$PYTHON" -c 'import json, sys
for p in json.load(sys.stdin)["pids"]: print(p)'
}

# end_exec ID EXEC_ID CLIENT_PID: SIGKILL an exec'd process and reap its
# client, so that no WaitProcess is in flight when the case's container is
# removed (that is case_rm_while_exec_waited's business).
end_exec() {
	ctl kill "$1" KILL "$2" || true
	wait "$3" 2>/dev/null || true
}

# ps_count_is ID N
ps_count_is() { [[ $(ps_pids "$1" | wc -l) == "$2" ]]; }

# exited PID: our child PID has ended.
exited() { ! kill -0 "$1" 2>/dev/null; }

# gone PID: no such process, or a zombie about to be reaped.
gone() {
	local s
	s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
	[[ $s == Z || -z $s ]]
}

run_case() { todo_case agent "$1" 'CASE_IDS=() CASE_PIDS=(); trap case_cleanup EXIT'; }

# ---- exec --------------------------------------------------------------------

case_exec_output_and_status() {
	local b o=$DIFF_TMP/o
	b=$(bundle exec-basic -- /bin/probe pause)
	up kf-exec-basic "$b"
	ctl_out "$o" exec kf-exec-basic e1 -- sh -c 'echo from exec; exit 7'
	expect_status 7 "$o"
	expect_stdout "from exec" "$o"
	# stderr is its own stream
	ctl_out "$o" exec kf-exec-basic e2 -- sh -c 'echo to-err >&2; echo to-out'
	expect_status 0 "$o"
	expect_stdout "to-out" "$o"
	[[ $(<"$o/stderr") == to-err ]] || fail "stderr: $(<"$o/stderr")"
	# the exec's status stays queryable
	ctl_out "$o" wait kf-exec-basic e1
	expect_status 7 "$o"
	expect_stdout 7 "$o"
}

# An exec joins the init's namespaces: uts, pid, mount.
case_exec_namespaces() {
	local b o=$DIFF_TMP/o
	b=$(bundle exec-ns --hostname kf-host -- /bin/sh -c \
		'echo from-init >/tmp/initfile; exec probe pause')
	up kf-exec-ns "$b"
	wait_file "$b/rootfs/tmp/initfile"
	ctl_out "$o" exec kf-exec-ns hn -- probe hostname
	expect_status 0 "$o"
	expect_stdout kf-host "$o"
	# Its own pid in the container's namespace, not 1 (the init's), and
	# its parent outside that namespace (runc exec alike): 0.
	ctl_out "$o" exec kf-exec-ns pid -- sh -c 'probe pid; probe ppid'
	expect_status 0 "$o"
	local pid
	pid=$(head -n 1 "$o/stdout")
	[[ $pid =~ ^[0-9]+$ && $pid != 1 ]] || fail "exec pid is \"$pid\""
	[[ $(sed -n 2p "$o/stdout") == 0 ]] || fail "exec ppid is $(sed -n 2p "$o/stdout"), want 0"
	# ps sees the container's processes only: the init as 1, and itself.
	ctl_out "$o" exec kf-exec-ns ps -- ps -o pid,args
	expect_status 0 "$o"
	awk 'NR > 1 { print $1, $2, $3 }' "$o/stdout" >"$o/ps"
	if ! grep -qx '1 probe pause' "$o/ps" || [[ $(wc -l <"$o/ps") != 2 ]]; then
		echo "# ps in the exec:"
		_diag <"$o/stdout"
		fail "want exactly the init (pid 1) and ps"
	fi
	ctl_out "$o" exec kf-exec-ns cat1 -- cat /proc/1/cmdline
	[[ $(tr '\0' ' ' <"$o/stdout") == "probe pause " ]] ||
		fail "/proc/1/cmdline in the exec: $(tr '\0' ' ' <"$o/stdout")"
	# mount namespace: the init's /tmp file, and the other way round
	ctl_out "$o" exec kf-exec-ns cat2 -- cat /tmp/initfile
	expect_status 0 "$o"
	expect_stdout from-init "$o"
	ctl_out "$o" exec kf-exec-ns w -- sh -c 'echo from-exec >/tmp/execfile'
	expect_status 0 "$o"
	[[ $(cat "$b/rootfs/tmp/execfile" 2>/dev/null) == from-exec ]] ||
		fail "the exec's /tmp/execfile is not in the container's rootfs"
}

case_exec_env_cwd_user() {
	local b o=$DIFF_TMP/o
	b=$(bundle exec-env -- /bin/probe pause)
	up kf-exec-env "$b"
	# shellcheck disable=SC2016
	ctl_out "$o" exec --env FOO=bar --env "SPACED=a b" --cwd /tmp \
		--user 1000:1000 kf-exec-env e -- sh -c \
		'echo "$FOO|$SPACED|$HOME"; probe cwd; probe id; touch /tmp/by-user'
	expect_status 0 "$o"
	expect_stdout "bar|a b|/home/user
/tmp
uid=1000 gid=1000 groups=" "$o"
	[[ $(stat -c %u:%g "$b/rootfs/tmp/by-user") == 1000:1000 ]] ||
		fail "/tmp/by-user is owned by $(stat -c %u:%g "$b/rootfs/tmp/by-user")"
	# default: root, cwd /
	ctl_out "$o" exec kf-exec-env d -- sh -c 'probe id; probe cwd'
	expect_status 0 "$o"
	expect_stdout "uid=0 gid=0 groups=
/" "$o"
}

case_exec_missing_binary() {
	local b o=$DIFF_TMP/o
	b=$(bundle exec-missing -- /bin/probe pause)
	up kf-exec-missing "$b"
	ctl_out "$o" exec kf-exec-missing m1 -- /bin/no-such-binary
	expect_status 125 "$o"
	expect_stdout "" "$o"
	expect_stderr_has /bin/no-such-binary "$o"
	ctl_out "$o" exec kf-exec-missing m2 -- no-such-command arg
	expect_status 125 "$o"
	expect_stderr_has no-such-command "$o"
	# a failed exec leaves no trace: the container runs on, the id is free
	ctl_out "$o" exec kf-exec-missing m1 -- probe echo again
	expect_status 0 "$o"
	expect_stdout again "$o"
	ps_count_is kf-exec-missing 1 || fail "ps: $(ctl ps kf-exec-missing)"
}

case_exec_duplicate_id() {
	local b o=$DIFF_TMP/o p
	b=$(bundle exec-dup -- /bin/probe pause)
	up kf-exec-dup "$b"
	ctl_out "$o" exec kf-exec-dup e1 -- true
	expect_status 0 "$o"
	# exited, and while running
	ctl_out "$o" exec kf-exec-dup e1 -- probe echo no
	expect_status 125 "$o"
	expect_stdout "" "$o"
	expect_stderr_has "already exists" "$o"
	ctl exec kf-exec-dup e2 -- probe pause </dev/null >/dev/null 2>&1 &
	p=$!
	track_pid $p
	until_true 10 ps_count_is kf-exec-dup 2 || fail "exec e2 never showed in ps"
	ctl_out "$o" exec kf-exec-dup e2 -- probe echo no
	expect_status 125 "$o"
	expect_stderr_has "already exists" "$o"
	ps_count_is kf-exec-dup 2 || fail "ps: $(ctl ps kf-exec-dup)"
	end_exec kf-exec-dup e2 $p
}

case_exec_unknown_container() {
	local o=$DIFF_TMP/o
	ctl_out "$o" exec kf-no-such-ctr e1 -- true
	expect_status 125 "$o"
	expect_stderr_has "not found" "$o"
	expect_stderr_has kf-no-such-ctr "$o"
}

# script_out OUT SHELL_CMD: SHELL_CMD under `script` (a pty on 0-2), stdin an
# empty pipe held open; OUT/stdout without CRs, OUT/status (script -e gives
# the command's status).
script_out() {
	local out=$1 st=0 fd
	rm -rf "$out" && mkdir -p "$out"
	mkfifo "$out/fifo"
	exec {fd}<>"$out/fifo"
	timeout -k 5 "$RUN_TIMEOUT" script -qec "$2" /dev/null <&"$fd" \
		>"$out/stdout.raw" 2>"$out/stderr" || st=$?
	exec {fd}>&-
	tr -d '\r' <"$out/stdout.raw" >"$out/stdout"
	echo "$st" >"$out/status"
}

case_exec_tty() {
	local b o=$DIFF_TMP/o ctlq
	b=$(bundle exec-tty -- /bin/probe pause)
	up kf-exec-tty "$b"
	ctlq=$(printf '%q -s %q' "$AGENT_CTL" "$AGENT_SOCK")
	script_out "$o" "$ctlq exec --tty kf-exec-tty t1 -- \
sh -c 'probe isatty 0; probe isatty 1; probe isatty 2; exit 5'"
	expect_status 5 "$o"
	expect_stdout "true
true
true" "$o"
	# without --tty: pipes
	ctl_out "$o" exec kf-exec-tty t2 -- sh -c 'probe isatty 0; probe isatty 1'
	expect_status 0 "$o"
	expect_stdout "false
false" "$o"
}

# The window size of kr-agent-ctl's terminal is the container pty's from
# the first instruction on: exec passes process.consoleSize (a resize after
# ExecProcess would race with the process; a few rounds to catch that).
case_exec_tty_initial_winsize() {
	local b o=$DIFF_TMP/o ctlq i
	b=$(bundle exec-tty-size -- /bin/probe pause)
	up kf-exec-tty-size "$b"
	ctlq=$(printf '%q -s %q' "$AGENT_CTL" "$AGENT_SOCK")
	for i in 1 2 3 4 5; do
		script_out "$o" "stty rows 33 cols 77; $ctlq exec --tty kf-exec-tty-size t$i -- \
sh -c 'probe winsize'"
		expect_status 0 "$o"
		expect_stdout "33 77" "$o"
	done
}

# A SIGWINCH to kr-agent-ctl becomes a resize of the container's pty.  The
# container prints its size once it is 44x99, or after 5 s whatever it is.
case_exec_tty_resize() {
	local b o=$DIFF_TMP/o ctlq
	b=$(bundle exec-winch -- /bin/probe pause)
	up kf-exec-winch "$b"
	ctlq=$(printf '%q -s %q' "$AGENT_CTL" "$AGENT_SOCK")
	script_out "$o" "stty rows 10 cols 20
$ctlq exec --tty kf-exec-winch w -- sh -c 'touch /tmp/started; i=0; \
while [ \$i -lt 100 ] && [ \"\$(probe winsize)\" != \"44 99\" ]; do \
sleep 0.05; i=\$((i + 1)); done; probe winsize' </dev/tty &
for i in \$(seq 200); do [ -e $b/rootfs/tmp/started ] && break; sleep 0.05; done
stty rows 44 cols 99; kill -WINCH \$!; wait \$!"
	expect_status 0 "$o"
	expect_stdout "44 99" "$o"
}

# ---- signals and wait ----------------------------------------------------------

case_kill_term_handler() {
	local b id=kf-term
	b=$(bundle term -- /bin/probe trap-term /tmp/ready)
	track_id $id
	bg_start agent "$b" $id "$DIFF_TMP/bg"
	track_pid "$BG_PID"
	wait_file "$b/rootfs/tmp/ready"
	ctl kill $id TERM
	bg_wait 10
	expect_status 0 "$BG_OUT"
	expect_stdout "got SIGTERM" "$BG_OUT"
}

case_kill_and_wait() {
	local b o=$DIFF_TMP/o
	b=$(bundle kill -- /bin/probe pause)
	up kf-kill "$b"
	ctl_out "$o" kill kf-kill KILL
	expect_status 0 "$o"
	ctl_out "$o" wait kf-kill
	expect_status 137 "$o"
	expect_stdout 137 "$o"
	until_true 5 gone "$INIT_PID" || fail "init $INIT_PID still alive"
	# an exit code, and waiting twice
	b=$(bundle exit42 -- /bin/probe exit 42)
	up kf-exit42 "$b"
	ctl_out "$o" wait kf-exit42
	expect_status 42 "$o"
	expect_stdout 42 "$o"
	ctl_out "$o" wait kf-exit42
	expect_status 42 "$o"
	expect_stdout 42 "$o"
}

# kill --all reaches every process of the container: the init (a shell
# with a SIGTERM trap, so it lives on: were it to exit, the kernel would
# SIGKILL the rest of its pid namespace) notes the signal, the two exec'd
# `probe pause` die of it (143).
case_kill_all() {
	local b o=$DIFF_TMP/o id=kf-kill-all p1 p2 st
	b=$(bundle kill-all -- /bin/sh -c 'trap "echo term >>/tmp/init-term" TERM
touch /tmp/ready; while :; do probe sleep 0.1; done')
	up $id "$b"
	wait_file "$b/rootfs/tmp/ready"
	ctl exec $id x1 -- probe pause </dev/null >/dev/null 2>&1 &
	p1=$!
	track_pid $p1
	ctl exec $id x2 -- probe pause </dev/null >/dev/null 2>&1 &
	p2=$!
	track_pid $p2
	until_true 10 ps_count_is $id 4 || fail "ps: $(ctl ps $id)"
	ctl kill --all $id TERM
	ctl_out "$o" wait $id x1
	expect_status 143 "$o"
	ctl_out "$o" wait $id x2
	expect_status 143 "$o"
	st=0; wait $p1 || st=$?
	[[ $st == 143 ]] || fail "exec client x1 exited $st, want 143"
	st=0; wait $p2 || st=$?
	[[ $st == 143 ]] || fail "exec client x2 exited $st, want 143"
	wait_file "$b/rootfs/tmp/init-term" 5
	ctl exec $id alive -- true </dev/null ||
		fail "the init did not survive its trapped SIGTERM"
	[[ $(<"$b/rootfs/tmp/init-term") == term ]] ||
		fail "init-term: $(<"$b/rootfs/tmp/init-term")"
	ctl kill --all $id KILL
	ctl_out "$o" wait $id
	expect_status 137 "$o"
}

# A signal for an exec process ends that process only.
case_kill_exec_process() {
	local b o=$DIFF_TMP/o id=kf-kill-exec p st
	b=$(bundle kill-exec -- /bin/probe pause)
	up $id "$b"
	ctl exec $id x1 -- probe pause </dev/null >/dev/null 2>&1 &
	p=$!
	track_pid $p
	until_true 10 ps_count_is $id 2 || fail "ps: $(ctl ps $id)"
	ctl kill $id KILL x1
	ctl_out "$o" wait $id x1
	expect_status 137 "$o"
	st=0; wait $p || st=$?
	[[ $st == 137 ]] || fail "exec client exited $st, want 137"
	sleep 0.2
	ps_count_is $id 1 || fail "ps after the exec died: $(ctl ps $id)"
	ctl_out "$o" exec $id x2 -- probe echo still running
	expect_status 0 "$o"
	expect_stdout "still running" "$o"
}

case_kill_exited_process() {
	local b o=$DIFF_TMP/o id=kf-kill-exited
	b=$(bundle kill-exited -- /bin/probe pause)
	up $id "$b"
	ctl_out "$o" exec $id x1 -- true
	expect_status 0 "$o"
	ctl_out "$o" kill $id TERM x1
	expect_status 125 "$o"
	expect_stderr_has exited "$o"
	ctl_out "$o" kill $id TERM no-such-exec
	expect_status 125 "$o"
	expect_stderr_has "not found" "$o"
	ctl kill $id KILL
	ctl_out "$o" wait $id
	expect_status 137 "$o"
	ctl_out "$o" kill $id TERM
	expect_status 125 "$o"
	expect_stderr_has exited "$o"
	ctl_out "$o" kill kf-no-such-ctr TERM
	expect_status 125 "$o"
	expect_stderr_has "not found" "$o"
}

# ---- pause / resume ------------------------------------------------------------

lines() { wc -l <"$1" 2>/dev/null || echo 0; }
lines_ge() { (($(lines "$1") >= $2)); }

case_pause_resume() {
	local b o=$DIFF_TMP/o id=kf-pause f n1 n2 n3
	# shellcheck disable=SC2016
	b=$(bundle pause -- /bin/sh -c \
		'i=0; while :; do i=$((i + 1)); echo $i >>/tmp/counter; probe sleep 0.1; done')
	f=$b/rootfs/tmp/counter
	up $id "$b"
	until_true 10 lines_ge "$f" 3 || fail "the counter does not count"
	ctl_out "$o" pause $id
	expect_status 0 "$o"
	sleep 0.1
	n1=$(lines "$f")
	sleep 0.6
	n2=$(lines "$f")
	[[ $n1 == "$n2" ]] || fail "the counter grew while paused: $n1 -> $n2"
	ctl_out "$o" pause $id
	expect_status 125 "$o"
	expect_stderr_has "not running" "$o"
	ctl_out "$o" resume $id
	expect_status 0 "$o"
	sleep 0.6
	n3=$(lines "$f")
	((n3 > n2)) || fail "the counter did not grow after resume: $n2 -> $n3"
	ctl_out "$o" resume $id
	expect_status 125 "$o"
	expect_stderr_has "not paused" "$o"
	ctl_out "$o" pause kf-no-such-ctr
	expect_status 125 "$o"
	expect_stderr_has "not found" "$o"
}

# ---- stats, ps, update ---------------------------------------------------------

case_stats() {
	local b o=$DIFF_TMP/o id=kf-stats s=$DIFF_TMP/stats.json
	b=$(bundle stats --memory $((48 << 20)) -- /bin/probe pause)
	up $id "$b"
	# shellcheck disable=SC2016
	ctl_out "$o" exec $id busy -- sh -c \
		'i=0; while [ $i -lt 100000 ]; do i=$((i + 1)); done; probe memhog 4'
	expect_status 0 "$o"
	ctl stats $id >"$s" || fail "stats failed"
	"$PYTHON" -c 'import json, sys
s = json.load(open(sys.argv[1]))
bad = []
if not s["memory_usage"] > 0: bad.append("memory_usage")
if not s["pids_current"] >= 1: bad.append("pids_current")
if not s["cpu_usage_ns"] > 0: bad.append("cpu_usage_ns")
if s["memory_limit"] != int(sys.argv[2]): bad.append("memory_limit")
if not s["memory_max_usage"] >= 4 << 20: bad.append("memory_max_usage")
sys.exit("bad: " + " ".join(bad) if bad else 0)' "$s" $((48 << 20)) ||
		{ _diag <"$s"; fail "stats out of range"; }
	ctl_out "$o" stats kf-no-such-ctr
	expect_status 125 "$o"
	expect_stderr_has "not found" "$o"
}

case_ps() {
	local b id=kf-ps p pids other
	b=$(bundle ps -- /bin/probe pause)
	up $id "$b"
	[[ $(ps_pids $id) == "$INIT_PID" ]] || fail "ps: $(ctl ps $id), init $INIT_PID"
	ctl exec $id s -- probe sleep 31.5 </dev/null >/dev/null 2>&1 &
	p=$!
	track_pid $p
	until_true 10 ps_count_is $id 2 || fail "ps: $(ctl ps $id)"
	pids=$(ps_pids $id)
	grep -qx "$INIT_PID" <<<"$pids" || fail "init $INIT_PID not in ps: $pids"
	other=$(grep -vx "$INIT_PID" <<<"$pids")
	[[ $(tr '\0' ' ' <"/proc/$other/cmdline") == "probe sleep 31.5 " ]] ||
		fail "pid $other is not the exec: $(tr '\0' ' ' <"/proc/$other/cmdline")"
	ctl kill $id KILL s
	wait $p || true
	until_true 5 ps_count_is $id 1 || fail "ps after the exec ended: $(ctl ps $id)"
}

case_update() {
	local b o=$DIFF_TMP/o id=kf-update s=$DIFF_TMP/stats.json
	local res=$DIFF_TMP/res.json bad=$DIFF_TMP/bad.json
	b=$(bundle update -- /bin/probe pause)
	up $id "$b"
	echo '{"memory":{"limit":67108864},"pids":{"limit":20}}' >"$res"
	ctl_out "$o" update $id "$res"
	expect_status 0 "$o"
	ctl stats $id >"$s"
	[[ $(json_get "$s" memory_limit) == 67108864 ]] ||
		fail "memory_limit $(json_get "$s" memory_limit)"
	[[ $(json_get "$s" pids_limit) == 20 ]] ||
		fail "pids_limit $(json_get "$s" pids_limit)"
	# The new pids limit holds: init + the forking exec + 18 = 20.
	ctl_out "$o" exec $id fb -- probe forkbomb 30
	expect_status 0 "$o"
	expect_stdout "forked=18 errno=EAGAIN" "$o"
	echo '{"memory": {"limit": ' >"$bad"
	ctl_out "$o" update $id "$bad"
	expect_status 125 "$o"
	expect_stderr_has "invalid JSON" "$o"
	ctl stats $id >"$s"
	[[ $(json_get "$s" memory_limit) == 67108864 ]] ||
		fail "memory_limit after a bad update: $(json_get "$s" memory_limit)"
}

# ---- OOM -------------------------------------------------------------------------

case_oom() {
	local b o=$DIFF_TMP/o id=kf-oom ow=$DIFF_TMP/oom-wait p st
	b=$(bundle oom --memory $((32 << 20)) -- /bin/sh -c \
		'while [ ! -e /tmp/go ]; do sleep 0.05; done; exec probe memhog 128')
	rm -rf "$ow" && mkdir -p "$ow"
	up $id "$b"
	# oom-wait is in flight before the hog starts
	"$AGENT_CTL" -s "$AGENT_SOCK" -t 30 oom-wait >"$ow/stdout" 2>"$ow/stderr" &
	p=$!
	track_pid $p
	sleep 0.3
	touch "$b/rootfs/tmp/go"
	ctl_out "$o" wait $id
	expect_status 137 "$o"
	expect_stdout "137 oom-killed" "$o"
	# (on v1 the eventfd fires before the kernel counts the kill: an agent
	# that reads the counter once drops most events)
	st=0
	until_true 5 exited "$p" ||
		fail "oom-wait had no event 5 s after the OOM kill"
	wait $p || st=$?
	[[ $st == 0 ]] || { _diag <"$ow/stderr"; fail "oom-wait exited $st"; }
	[[ $(<"$ow/stdout") == "$id" ]] || fail "oom-wait printed \"$(<"$ow/stdout")\""
}

# ---- rm, details -------------------------------------------------------------------

# the agent's state dir, seen through its own mount namespace
state_entry() { echo "/proc/$AGENT_PID/root$AGENT_STATE/containers/$1"; }

ctr_cgroups() {
	find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d \
		-path "*$AGENT_CG_PREFIX*" -name "*$1*" 2>/dev/null || true
}

case_rm_running() {
	local b o=$DIFF_TMP/o id=kf-rm pids pid d=$DIFF_TMP/details.json
	b=$(bundle rm -- /bin/sh -c 'probe pause & probe pause & exec probe pause')
	up $id "$b"
	# and a process an exec left behind (its exec is over: no WaitProcess
	# in flight, see case_rm_while_exec_waited)
	ctl exec $id x -- sh -c 'probe pause </dev/null >/dev/null 2>&1 &' ||
		fail "exec failed"
	until_true 10 ps_count_is $id 4 || fail "ps: $(ctl ps $id)"
	pids=$(ps_pids $id)
	[[ -d $(state_entry $id) ]] || fail "no state dir $(state_entry $id) to check"
	[[ -n $(ctr_cgroups $id) ]] || fail "no cgroup named $id to check"
	ctl_out "$o" rm $id
	expect_status 0 "$o"
	for pid in $pids; do
		until_true 5 gone "$pid" || fail "pid $pid survived rm"
	done
	ctl details >"$d"
	[[ $(json_get "$d" container_count) == 0 ]] ||
		fail "container_count $(json_get "$d" container_count) after rm"
	[[ -z $(ctr_cgroups $id) ]] || fail "cgroups left: $(ctr_cgroups $id)"
	[[ ! -e $(state_entry $id) ]] || fail "state dir $(state_entry $id) left"
	ctl_out "$o" ps $id
	expect_status 125 "$o"
	expect_stderr_has "not found" "$o"
	ctl_out "$o" rm $id
	expect_status 125 "$o"
	expect_stderr_has "not found" "$o"
}

case_rm_paused() {
	local b o=$DIFF_TMP/o id=kf-rm-paused
	b=$(bundle rm-paused -- /bin/probe pause)
	up $id "$b"
	ctl pause $id
	ctl_out "$o" rm $id
	expect_status 0 "$o"
	until_true 5 gone "$INIT_PID" || fail "init $INIT_PID survived rm"
	[[ -z $(ctr_cgroups $id) ]] || fail "cgroups left: $(ctr_cgroups $id)"
}

case_rm_created_never_started() {
	local b o=$DIFF_TMP/o id=kf-rm-created
	b=$(bundle rm-created -- /bin/probe echo never)
	track_id $id
	INIT_PID=$(ctl create $id "$b")
	ctl_out "$o" rm $id
	expect_status 0 "$o"
	until_true 5 gone "$INIT_PID" || fail "init $INIT_PID survived rm"
	[[ -z $(ctr_cgroups $id) ]] || fail "cgroups left: $(ctr_cgroups $id)"
}

# rm while a client waits for an exec'd process (containerd deletes a task
# while the shim still waits on one of its execs): the wait ends (the
# process died of SIGKILL, or the container is gone), the agent lives on.
case_rm_while_exec_waited() {
	local b id p st i x
	local -a ps
	b=$(bundle rm-waited -- /bin/probe pause)
	# WaitProcess reads the container's cgroup when the process ends, while
	# RemoveContainer destroys it: a race (a use-after-free once, which ASan
	# caught); rounds of three waited execs give it a fair chance to show.
	for i in 1 2 3 4 5 6; do
		id=kf-rm-waited-$i
		up $id "$b"
		ps=()
		for x in x1 x2 x3; do
			ctl exec $id $x -- probe pause </dev/null >/dev/null 2>&1 &
			ps+=($!)
			track_pid $!
		done
		# 30 s: execs into one container are serialised (cgroup lock), and
		# under ASan on a loaded 2-core machine each takes a while.
		until_true 30 ps_count_is $id 4 || fail "ps: $(ctl ps $id)"
		ctl rm $id || fail "rm $id failed"
		for p in "${ps[@]}"; do
			st=0
			until_true 10 exited "$p" ||
				fail "an exec client still waits"
			wait "$p" || st=$?
			[[ $st == 137 || $st == 125 ]] ||
				fail "an exec client exited $st, want 137 or 125"
		done
		kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died"
		ctl check >/dev/null || fail "the agent does not answer"
	done
}

case_details() {
	local d=$DIFF_TMP/details.json want=1
	[[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] && want=2
	ctl details >"$d"
	[[ -n $(json_get "$d" agent_version) ]] || fail "empty agent_version"
	[[ $(json_get "$d" is_pid1) == false ]] || fail "is_pid1 $(json_get "$d" is_pid1)"
	[[ $(json_get "$d" cgroup_version) == "$want" ]] ||
		fail "cgroup_version $(json_get "$d" cgroup_version), want $want"
	[[ $(json_get "$d" container_count) == 0 ]] ||
		fail "container_count $(json_get "$d" container_count) between cases"
	ctl check >/dev/null || fail "check failed"
}

CASES=(
	case_details
	case_exec_output_and_status case_exec_namespaces case_exec_env_cwd_user
	case_exec_missing_binary case_exec_duplicate_id case_exec_unknown_container
	case_exec_tty case_exec_tty_initial_winsize case_exec_tty_resize
	case_kill_term_handler case_kill_and_wait case_kill_all
	case_kill_exec_process case_kill_exited_process
	case_pause_resume case_stats case_ps case_update case_oom
	case_rm_running case_rm_paused case_rm_created_never_started
	case_rm_while_exec_waited
)

# ---- main ------------------------------------------------------------------------

# Arguments, if any, name the cases to run (with or without "case_").
select_cases "$@"

diff_init
test_fixtures

# shellcheck disable=SC2119 # no extra agent arguments
if ! start_agent; then
	for c in "${CASES[@]}"; do
		tap_result "agent: $(tr _ " " <<<"${c#case_}")" 77 "the agent does not start"
	done
	tap_done
	exit 1
fi
for c in "${CASES[@]}"; do
	if ! kill -0 "$AGENT_PID" 2>/dev/null; then
		# every ctl call would wait for its timeout: do not run the rest
		echo "# the agent died; not running ${c#case_}"
		tap_result "agent: $(tr _ " " <<<"${c#case_}")" 1
		continue
	fi
	run_case "$c"
	kill -0 "$AGENT_PID" 2>/dev/null || continue
	# every case leaves the agent empty
	n=$(ctl details 2>/dev/null | "$PYTHON" -c \
		'import json, sys; print(json.load(sys.stdin)["container_count"])' 2>/dev/null || echo "?")
	if [[ $n != 0 ]]; then
		echo "# after ${c#case_}: the agent holds $n container(s)"
	fi
done
log=$AGENT_LOG
rc=0
stop_agent || rc=$?
tap_result "agent: leaves nothing behind" "$rc"
# ASan / UBSan / LSan write to the agent's stderr, which is its log.
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: .*Sanitizer' "$log"; then
	echo "# sanitizer reports in the agent log:"
	grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -n 200 | _diag
	tap_result "agent: no sanitizer report in its log" 1
else
	tap_result "agent: no sanitizer report in its log" 0
fi
if ((TAP_FAIL)); then
	echo "# last lines of the agent log:"
	tail -n 40 "$log" | _diag
fi
tap_done
