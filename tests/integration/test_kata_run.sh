#!/usr/bin/env bash
# kata-run end to end: the command-line contract of shim/cli/cli.h.  Each
# case makes a busybox bundle, runs `kata-run run --id ID BUNDLE` (a fresh
# VM each time: our guest kernel + initramfs through the libvirt backend,
# TCG on hosts without KVM) under `timeout`, and checks the exact output and
# exit status; then nothing of that id may be left: no QEMU, virtiofsd or
# kata-run process naming it, no /run/kata-run/{vm,pods}/ID, no mount naming
# it or this script's temp dir in our mount namespace (kata-run makes its
# share's bind mounts in a private one).
#
# Covered: output and exit status (0, N, 126, 127, 128+N), stdin (EOF, 1 MiB,
# never closed), stdout's reader going away, env, cwd, user and hostname,
# signals forwarded (TERM, HUP, INT; the third TERM kills), SIGINT during
# boot, kill -9 of kata-run then `kata-run cleanup ID`, a terminal (tty,
# size, input), read-only and writable rootfs on the virtio-fs share, two
# runs at once, the short form, bad bundles and ids, bad config files,
# check/cleanup/--help/--version and usage errors.  About 3 minutes on 2
# cores under TCG.
#
# The guest kernel and initrd come from a config file written here (not the
# search order).  KATA_RUN=PATH tests another binary (default
# $KR_BUILD/kata-run).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${KR_BUILD:-build}
KR=${KATA_RUN:-$PWD/$BUILD/kata-run}	# the sanitized one under KR_BUILD=build-asan
[ "$BUILD" = build-asan ] && BUILD=build	# the guest needs the static agent
. tests/lib/tap.sh
. tests/lib/bundle.sh
skip_all() { n=$((n + 1)); skip=$((skip + 1)); echo "ok $n - kata-run # SKIP $1"; finish; }

. tests/lib/guest.sh
command -v script >/dev/null || skip_all "script not installed (apt-get install bsdutils)"
[ -x "$KR" ] || skip_all "$KR not built"
guest_setup --libvirt
[ -x build/tests/probe ] || make -s build/tests/probe >/dev/null	# make_rootfs copies it

RUN_TIMEOUT=${KR_RUN_TIMEOUT:-120}	# one kata-run (TCG boot ~2-5 s; loaded machines)
W=$(mktemp -d /tmp/kr-run.XXXXXX)
CFG=$W/config.toml
printf 'kernel = "%s"\ninitrd = "%s"\n' "$kernel" "$initrd" >"$CFG"
IDS=() BG_PIDS=() seq_n=0

cleanup() {
	local p id
	# kata-run processes still running (a failed case): kill them, as a
	# kill -9 would, so that cleanup (which refuses while the owner
	# lives) can remove their VMs.
	for id in "${IDS[@]}"; do
		for p in $(pgrep -f -- "run --id $id "); do kill -KILL "$p" 2>/dev/null; done
	done
	for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	# With qemu:///embed QEMU outlives a killed kata-run: remove every VM
	# this script may have started.
	[ ${#IDS[@]} -gt 0 ] && timeout 60 "$KR" --config "$CFG" cleanup "${IDS[@]}" >/dev/null 2>&1
	if grep -qF "$W" /proc/self/mountinfo; then
		echo "# mounts left under $W, not removing it:"
		grep -F "$W" /proc/self/mountinfo | sed 's/^/#   /'
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT

diag() { sed 's/^/#   /'; }
# new_id: a fresh id in ID (kr<pid>-NN), recorded for the leak check of the
# current case and for the EXIT trap's cleanup.
new_id() {
	seq_n=$((seq_n + 1))
	ID=$(printf 'kr%d-%02d' $$ "$seq_n")
	IDS+=("$ID") CASE_IDS+=("$ID")
}

# What is left of ID: processes (QEMU's domain name kata-run-ID, the VM and
# pod state dirs, virtiofsd, a kata-run with --id ID), state dirs, mounts.
leftovers() {
	local id=$1 d
	pgrep -af -- "(kata-run-|/run/kata-run/vm/|/run/kata-run/pods/|virtiofsd.*|--id[ =])$id([^0-9]|\$)"
	for d in "/run/kata-run/vm/$id" "/run/kata-run/pods/$id"; do
		[ -e "$d" ] && echo "dir $d"
	done
	grep -F -e "$id" -e "$W" /proc/self/mountinfo | sed 's/^/mount: /'
}
# no_leaks ID...: nothing left of any ID (processes get 3 s to go away).
no_leaks() {
	local out id
	for _ in $(seq 30); do
		out=$(for id; do leftovers "$id"; done)
		[ -z "$out" ] && return 0
		sleep 0.1
	done
	echo "# left behind:"
	echo "$out" | cut -c1-200 | diag
	return 1
}

# tcase NAME FUNC: runs FUNC in this shell, then the leak check of the ids it
# used; one TAP line.
tcase() {
	local name=$1 fn=$2 rc t0=$SECONDS
	# Development: KR_TEST_CASES=REGEX runs only the matching cases.
	if [ -n "${KR_TEST_CASES:-}" ] && ! [[ $name =~ $KR_TEST_CASES ]]; then
		LAST_RC=0
		return 0
	fi
	CASE_IDS=()
	"$fn"
	rc=$?
	if [ ${#CASE_IDS[@]} -gt 0 ]; then
		no_leaks "${CASE_IDS[@]}" || rc=1
	fi
	[ $((SECONDS - t0)) -gt 20 ] && echo "# $name took $((SECONDS - t0)) s"
	LAST_RC=$rc
	ok $rc "$name"
}

# Bundles: rootfs files are hard links to one template (containers may
# create files, never write into existing ones).
make_rootfs "$W/rootfs" || { ok 1 "template rootfs"; finish; }
for a in tty stty; do ln -sf busybox "$W/rootfs/bin/$a"; done
mkb() {	# DIR [make_bundle options] -- ARGS...
	local b=$1
	shift
	rm -rf "$b"
	make_bundle "$b" --rootfs-from "$W/rootfs" "$@" >/dev/null
}
# edit_config BUNDLE PYTHON: run PYTHON with c = the parsed config.json,
# then write c back.
edit_config() {
	"$PYTHON" -c 'import json, sys
p = sys.argv[1]; c = json.load(open(p))
exec(sys.argv[2])
json.dump(c, open(p, "w"), indent=1)' "$1/config.json" "$2"
}

# ---- running kata-run --------------------------------------------------------
# Results go to $W/NAME.out, $W/NAME.err, status in RC; R=$W/NAME.
kr() {	# NAME ARGS...   (stdin from $IN, default /dev/null)
	R=$W/$1
	shift
	timeout -k 10 "$RUN_TIMEOUT" "$KR" "$@" <"${IN:-/dev/null}" >"$R.out" 2>"$R.err"
	RC=$?
}
run() {	# ID BUNDLE [run options]: kata-run --config CFG run --id ID [opts] BUNDLE
	local id=$1 b=$2
	shift 2
	kr "$id" --config "$CFG" run --id "$id" "$@" "$b"
}
# bg_run ID BUNDLE: the same in the background; BG is the timeout process,
# KPID kata-run itself (SIGINT not ignored as it would be for a background
# job of a script).  bg_wait sets RC.
bg_run() {
	local id=$1 b=$2
	R=$W/$id
	timeout -k 10 "$RUN_TIMEOUT" env --default-signal=INT,QUIT "$KR" --config "$CFG" \
		run --id "$id" "$b" <"${IN:-/dev/null}" >"$R.out" 2>"$R.err" &
	BG=$! KPID=
	BG_PIDS+=("$BG")
	for _ in $(seq 200); do
		KPID=$(pgrep -P "$BG" | head -1)
		[ -n "$KPID" ] && return 0
		kill -0 "$BG" 2>/dev/null || break
		sleep 0.01
	done
	echo "# kata-run did not start"
	return 1
}
bg_wait() { wait "$1" 2>/dev/null; RC=$?; }	# no "Killed" notice
# wait_output FILE TEXT: until FILE has a line TEXT, while $BG runs.
wait_output() {
	for _ in $(seq $((RUN_TIMEOUT * 10))); do
		grep -qx -- "$2" "$1" 2>/dev/null && return 0
		kill -0 "$BG" 2>/dev/null || break
		sleep 0.1
	done
	echo "# never printed \"$2\"; stdout:"
	diag <"$1"
	echo "# stderr:"
	diag <"${1%.out}.err"
	return 1
}

# ---- checks on the last run (R, RC) --------------------------------------
show_err() { [ -s "$R.err" ] && { echo "# stderr:"; diag <"$R.err"; }; return 0; }
want_rc() {
	[ "$RC" = "$1" ] && return 0
	echo "# exit status: want $1, got $RC"
	echo "# stdout:"; head -c 2000 "$R.out" | diag
	show_err
	return 1
}
want_rc_in() {	# STATUS... (any of them)
	local s
	for s; do [ "$RC" = "$s" ] && return 0; done
	echo "# exit status: want one of $*, got $RC"
	show_err
	return 1
}
want_out() {	# exact bytes of stdout
	cmp -s "$R.out" <(printf '%s' "$1") && return 0
	echo "# stdout differs (want, got):"
	diff <(printf '%s' "$1") "$R.out" | head -20 | diag
	show_err
	return 1
}
want_no_err() {
	[ ! -s "$R.err" ] && return 0
	echo "# stderr not empty:"
	diag <"$R.err"
	return 1
}
# want_error TEXT: stderr is one line "kata-run: ..." containing TEXT.
want_error() {
	if [ "$(wc -l <"$R.err")" = 1 ] && head -1 "$R.err" | grep -q '^kata-run: ' &&
		grep -qF -- "$1" "$R.err"; then
		echo "# error: $(cat "$R.err")"
		return 0
	fi
	echo "# want one line \"kata-run: ...$1...\" on stderr, got:"
	diag <"$R.err"
	return 1
}

# ---- cases ---------------------------------------------------------------

c_help() {
	kr help --help
	want_rc 0 && for w in run check cleanup; do
		grep -qw "$w" "$R.out" || { echo "# --help does not mention $w:"; diag <"$R.out"; return 1; }
	done
}
c_version() {
	kr version --version
	want_rc 0 || return 1
	grep -qF "$(cat VERSION)" "$R.out" && return 0
	echo "# want the version $(cat VERSION):"; diag <"$R.out"; return 1
}
want_usage() {
	want_rc_in 125 2 || return 1
	grep -qi usage "$R.err" && return 0
	echo "# no usage on stderr:"; diag <"$R.err"; return 1
}
c_bad_flag() { kr badflag --frobnicate; want_usage; }
c_bad_run_flag() {
	new_id
	mkb "$W/b-$ID" -- true
	kr "$ID" --config "$CFG" run --id "$ID" --frobnicate "$W/b-$ID"
	want_usage
}
c_run_no_bundle() { kr nobundle --config "$CFG" run; want_usage; }
c_bad_subcommand() {
	# Indistinguishable from the short form with a bundle "frobnicate":
	# either a usage message or an error naming it.
	kr badcmd frobnicate
	want_rc_in 125 2 || return 1
	grep -qi -e usage -e frobnicate "$R.err" && return 0
	echo "# stderr names neither usage nor frobnicate:"; diag <"$R.err"; return 1
}
c_check() {
	kr check --config "$CFG" check
	want_rc 0 || return 1
	for w in kvm libvirt virtiofsd kernel; do
		cat "$R.out" "$R.err" | grep -qi "$w" ||
			{ echo "# no line about $w:"; cat "$R.out" "$R.err" | diag; return 1; }
	done
	diag <"$R.out"
}
c_cleanup_unknown() {
	new_id
	kr "$ID" --config "$CFG" cleanup "$ID"
	want_rc 0
}

c_hello() {
	new_id; mkb "$W/b-$ID" -- echo hello
	run "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'hello\n' && want_no_err
}
state_dirs() { find /run/kata-run/vm /run/kata-run/pods -mindepth 1 -maxdepth 1 2>/dev/null | sort; }
c_short_form() {
	# kata-run [GLOBAL OPTIONS] BUNDLE: no --id, so compare the state dirs.
	local b=$W/b-short before new
	mkb "$b" -- echo short form
	before=$(state_dirs)
	kr short --config "$CFG" "$b"
	want_rc 0 && want_out $'short form\n' || return 1
	# New entries named as kata-run names its own ids (kr + 12 hex digits,
	# shim/core/sandbox.h) only: other runs on the host come and go.
	new=$(comm -13 <(echo "$before") <(state_dirs) | grep -E '/kr[0-9a-f]{12}$')
	[ -z "$new" ] && [ -z "$(pgrep -af -- "$b")" ] && return 0
	echo "# new in /run/kata-run/{vm,pods}:"; echo "$new" | diag
	pgrep -af -- "$b" | diag
	return 1
}
c_stderr() {
	new_id; mkb "$W/b-$ID" -- sh -c 'echo out; echo err >&2; echo out2'
	run "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'out\nout2\n' || return 1
	cmp -s "$R.err" <(printf 'err\n') && return 0
	echo "# stderr: want \"err\", got:"; diag <"$R.err"; return 1
}
c_exit3() {
	new_id; mkb "$W/b-$ID" -- sh -c 'exit 3'
	run "$ID" "$W/b-$ID"
	want_rc 3 && want_out ''
}
c_exit0() {
	new_id; mkb "$W/b-$ID" -- true
	run "$ID" "$W/b-$ID"
	want_rc 0 && want_out '' && want_no_err
}
c_stdin() {
	new_id; mkb "$W/b-$ID" -- cat
	printf 'a\nb\n' >"$W/in-small"
	IN=$W/in-small run "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'a\nb\n'
}
c_stdin_pipe() {
	# A pipe rather than a file; EOF must end cat.
	new_id; mkb "$W/b-$ID" -- cat
	printf 'a\nb\n' | timeout -k 10 "$RUN_TIMEOUT" "$KR" --config "$CFG" run --id "$ID" \
		"$W/b-$ID" >"$W/$ID.out" 2>"$W/$ID.err"
	RC=$? R=$W/$ID
	want_rc 0 && want_out $'a\nb\n'
}
c_stdin_big() {
	new_id; mkb "$W/b-$ID" -- wc -c
	head -c 1048576 /dev/urandom >"$W/in-big"
	IN=$W/in-big run "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'1048576\n'
}
c_stdin_big_cat() {
	new_id; mkb "$W/b-$ID" -- cat
	IN=$W/in-big run "$ID" "$W/b-$ID"
	want_rc 0 || return 1
	cmp "$W/in-big" "$R.out" | diag
	[ "${PIPESTATUS[0]}" = 0 ] || { echo "# got $(wc -c <"$R.out") bytes"; return 1; }
}
c_env_cwd() {
	new_id; mkb "$W/b-$ID" --env FOO=bar --cwd /tmp -- sh -c 'env | grep "^FOO="; pwd'
	run "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'FOO=bar\n/tmp\n'
}
c_not_found() {
	new_id; mkb "$W/b-$ID" -- no-such-command-xyz arg
	run "$ID" "$W/b-$ID"
	want_rc 127 && want_out '' && want_error no-such-command-xyz
}
c_not_executable() {
	new_id; mkb "$W/b-$ID" -- /etc/passwd
	run "$ID" "$W/b-$ID"
	want_rc 126 && want_out '' && want_error /etc/passwd
}
c_self_kill() {
	# Without a pid namespace: the pid 1 of one ignores even SIGKILL sent
	# from inside it, so `kill -KILL $$` would do nothing there.
	# shellcheck disable=SC2016
	new_id; mkb "$W/b-$ID" -- sh -c 'echo before; kill -KILL $$; echo after'
	edit_config "$W/b-$ID" 'ns = c["linux"]["namespaces"]
c["linux"]["namespaces"] = [n for n in ns if n["type"] != "pid"]'
	run "$ID" "$W/b-$ID"
	want_rc 137 && want_out $'before\n'
}
# The container (pid 1 of its namespace: a signal with no handler would be
# ignored) traps SIG and exits STATUS; kata-run gets SIG once it runs.
forwarded() {	# SIG STATUS
	new_id
	mkb "$W/b-$ID" -- sh -c "trap 'echo got $1; exit $2' $1; echo ready; while :; do sleep 0.1; done"
	bg_run "$ID" "$W/b-$ID" || return 1
	wait_output "$R.out" ready || { kill -KILL "$BG"; return 1; }
	kill -"$1" "$KPID"
	bg_wait "$BG"
	want_rc "$2" && want_out "ready
got $1
"
}
c_sigterm() { forwarded TERM 42; }
c_sighup() { forwarded HUP 43; }
c_sigint() { forwarded INT 44; }
c_sigterm_kills() {
	# No pid namespace: the container is not an init, SIGTERM's default
	# action ends it: 128 + 15.
	new_id; mkb "$W/b-$ID" -- sh -c 'echo ready; exec sleep 1000'
	edit_config "$W/b-$ID" 'ns = c["linux"]["namespaces"]
c["linux"]["namespaces"] = [n for n in ns if n["type"] != "pid"]'
	bg_run "$ID" "$W/b-$ID" || return 1
	wait_output "$R.out" ready || { kill -KILL "$BG"; return 1; }
	kill -TERM "$KPID"
	bg_wait "$BG"
	want_rc 143 && want_out $'ready\n'
}
c_sigterm_thrice() {
	# sleep as the pid 1 of its namespace ignores SIGTERM; kata-run turns
	# the third SIGINT/SIGTERM into a SIGKILL (shim/cli/cmd_run.c).
	new_id; mkb "$W/b-$ID" -- sh -c 'echo ready; exec sleep 1000'
	bg_run "$ID" "$W/b-$ID" || return 1
	wait_output "$R.out" ready || { kill -KILL "$BG"; return 1; }
	kill -TERM "$KPID"; sleep 0.5
	kill -TERM "$KPID"; sleep 0.5
	kill -0 "$KPID" 2>/dev/null || { echo "# kata-run ended after two SIGTERMs"; bg_wait "$BG"; show_err; return 1; }
	kill -TERM "$KPID"
	bg_wait "$BG"
	want_rc 137 && want_out $'ready\n'
}
c_sigint_boot() {
	new_id; mkb "$W/b-$ID" -- sleep 1000
	local t0 t
	t0=$(date +%s%N)
	bg_run "$ID" "$W/b-$ID" || return 1
	sleep 0.3
	kill -INT "$KPID"
	for _ in $(seq 300); do kill -0 "$BG" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$BG" 2>/dev/null && { echo "# still running 30 s after SIGINT: kill -9"; kill -KILL "$KPID"; }
	bg_wait "$BG"
	t=$((($(date +%s%N) - t0) / 1000000))
	echo "# exit status $RC after $t ms; stderr: $(head -3 "$R.err")"
	[ "$RC" != 0 ] && [ "$RC" != 124 ] && [ "$RC" != 137 ] && [ "$t" -lt 30000 ] && return 0
	echo "# want a non-zero status within 30 s"
	show_err
	return 1
}
c_kill9_cleanup() {
	new_id
	local id=$ID
	mkb "$W/b-$id" -- sh -c 'echo ready; while :; do sleep 0.1; done'
	bg_run "$id" "$W/b-$id" || return 1
	wait_output "$R.out" ready || { kill -KILL "$BG"; return 1; }
	# While its owner runs, cleanup must refuse and leave the run alone.
	kr "$id.early" --config "$CFG" cleanup "$id"
	if [ "$RC" = 0 ] || ! kill -0 "$KPID" 2>/dev/null || [ ! -d "/run/kata-run/pods/$id" ]; then
		echo "# cleanup while the owner runs: exit $RC, owner alive: $(kill -0 "$KPID" 2>/dev/null && echo yes || echo no)"
		show_err
		kill -KILL "$KPID"; bg_wait "$BG"
		return 1
	fi
	echo "# cleanup while running: $(head -1 "$R.err")"
	R=$W/$id
	kill -KILL "$KPID"
	bg_wait "$BG"
	echo "# after kill -9: $(leftovers "$id" | wc -l) things left (expected: QEMU outlives its owner)"
	# The id is taken until cleanup: a second run with it must fail
	# without touching the first VM.
	kr "$id.again" --config "$CFG" run --id "$id" "$W/b-$id"
	want_rc 125 || return 1
	grep -qiE 'exist|in use|taken|running' "$R.err" ||
		{ echo "# error does not say the id is in use:"; diag <"$R.err"; return 1; }
	kr "$id.cleanup" --config "$CFG" cleanup "$id"
	want_rc 0 || return 1
	no_leaks "$id" || return 1
	kr "$id.cleanup2" --config "$CFG" cleanup "$id"
	want_rc 0
}
# Terminal: script(1) gives kata-run a pty of 30x100; the container's own
# tty must be /dev/pts/0 with that size; input typed reaches it once and is
# echoed once (kata-run's terminal raw, the container's cooked).
c_tty() {
	new_id
	local id=$ID b=$W/b-$ID fifo=$W/$ID.fifo fd
	TTY_ID=$id
	# shellcheck disable=SC2016
	mkb "$b" --terminal -- sh -c 'tty; stty size; read x; echo "got $x"; exit 5'
	mkfifo "$fifo" || return 1
	exec {fd}<>"$fifo"
	R=$W/$id
	timeout -k 10 "$RUN_TIMEOUT" script -qec \
		"stty rows 30 cols 100; exec $(printf '%q ' "$KR" --config "$CFG" run --id "$id" "$b")" \
		/dev/null <&"$fd" >"$R.raw" 2>"$R.err" &
	BG=$!
	BG_PIDS+=("$BG")
	for _ in $(seq $((RUN_TIMEOUT * 10))); do
		grep -q '30 100' "$R.raw" 2>/dev/null && break
		kill -0 "$BG" 2>/dev/null || break
		sleep 0.1
	done
	sleep 0.2	# the container is in `read` by now (or soon; input waits)
	printf 'hi\n' >&"$fd"
	bg_wait "$BG"
	exec {fd}>&-
	tr -d '\r' <"$R.raw" >"$R.out"
	TTY_RC=$RC
	head -2 "$R.out" >"$R.head"
	cmp -s "$R.head" <(printf '/dev/pts/0\n30 100\n') && return 0
	echo "# want /dev/pts/0 and 30 100, got (raw):"
	od -c "$R.raw" | head -20 | diag
	show_err
	return 1
}
c_tty_input() {
	[ -n "${TTY_ID:-}" ] || return 1
	CASE_IDS=("$TTY_ID")
	R=$W/$TTY_ID RC=$TTY_RC
	want_rc 5 && want_out $'/dev/pts/0\n30 100\nhi\ngot hi\n'
}
c_readonly() {
	new_id; mkb "$W/b-$ID" --readonly -- sh -c 'touch /x 2>/dev/null && echo wrote || echo readonly'
	run "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'readonly\n' || return 1
	[ ! -e "$W/b-$ID/rootfs/x" ] || { echo "# /x exists in the bundle"; return 1; }
}
c_writable() {
	new_id; mkb "$W/b-$ID" -- sh -c 'echo x > /f && echo wrote'
	run "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'wrote\n' || return 1
	cmp -s "$W/b-$ID/rootfs/f" <(printf 'x\n') && return 0
	echo "# rootfs/f on the host: $(cat "$W/b-$ID/rootfs/f" 2>&1)"
	return 1
}
c_bind_mounts() {
	# Host paths in config.json mounts are shared into the VM: a read-only
	# directory and a writable file.
	new_id; mkb "$W/b-$ID" -- sh -c 'cat /data/in; echo out > /data/nope 2>/dev/null || echo ro; echo w >> /log; cat /log'
	mkdir -p "$W/data-$ID" && echo "from host" >"$W/data-$ID/in" && echo l1 >"$W/log-$ID"
	python3 - "$W/b-$ID/config.json" "$W/data-$ID" "$W/log-$ID" <<'PY' || return 1
import json, sys
p, d, f = sys.argv[1:]
c = json.load(open(p))
c["mounts"] += [{"destination": "/data", "type": "bind", "source": d, "options": ["rbind", "ro"]},
                {"destination": "/log", "type": "bind", "source": f, "options": ["bind", "rw"]}]
json.dump(c, open(p, "w"))
PY
	run "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'from host\nro\nl1\nw\n' || return 1
	[ ! -e "$W/data-$ID/nope" ] && [ "$(cat "$W/log-$ID")" = $'l1\nw' ] && return 0
	echo "# host side: $(ls "$W/data-$ID"), log: $(cat "$W/log-$ID")"
	return 1
}
c_concurrent() {
	local a b bga bgb rca rcb
	new_id; a=$ID; mkb "$W/b-$a" -- sh -c 'sleep 1; echo one'
	new_id; b=$ID; mkb "$W/b-$b" -- sh -c 'sleep 1; echo two; exit 2'
	bg_run "$a" "$W/b-$a" || return 1
	bga=$BG
	bg_run "$b" "$W/b-$b" || return 1
	bgb=$BG
	bg_wait "$bga"; rca=$RC
	bg_wait "$bgb"; rcb=$RC
	R=$W/$a RC=$rca
	want_rc 0 && want_out $'one\n' || return 1
	R=$W/$b RC=$rcb
	want_rc 2 && want_out $'two\n'
}
c_timings() {
	new_id; mkb "$W/b-$ID" -- echo hello
	run "$ID" "$W/b-$ID" --timings
	want_rc 0 && want_out $'hello\n' || return 1
	[ -s "$R.err" ] || { echo "# --timings printed nothing on stderr"; return 1; }
	head -20 "$R.err" | diag
}

c_stdin_open() {
	# stdin never reaches EOF (a fifo we hold open) and the container does
	# not read it: the run still ends when the container does.
	new_id; mkb "$W/b-$ID" -- echo hi
	local fd fifo=$W/$ID.fifo
	mkfifo "$fifo" && exec {fd}<>"$fifo"
	IN=$fifo run "$ID" "$W/b-$ID"
	exec {fd}>&-
	want_rc 0 && want_out $'hi\n'
}
c_stdout_closed() {
	# The reader of kata-run's stdout goes away while the container writes:
	# kata-run must end (whatever its status) and still clean up (SIGPIPE
	# must not kill it with the VM left running).
	new_id; mkb "$W/b-$ID" -- sh -c 'while :; do echo yyyyyyyyyyyyyyyyyyyy; done'
	R=$W/$ID
	local t0=$SECONDS
	timeout -k 10 60 "$KR" --config "$CFG" run --id "$ID" "$W/b-$ID" \
		</dev/null 2>"$R.err" | head -c 100 >"$R.out"
	RC=${PIPESTATUS[0]}
	echo "# exit status $RC after $((SECONDS - t0)) s; stderr: $(head -2 "$R.err")"
	# kata-run sends SIGPIPE, then SIGKILL to a container that ignores it
	# (pid 1 does): the container's 137, well before timeout's 60 s.
	[ $((SECONDS - t0)) -lt 50 ] && [ "$RC" != 124 ] && [ "$(wc -c <"$R.out")" = 100 ] && return 0
	echo "# want kata-run to end by itself"
	return 1
}
c_relative_bundle() {
	new_id; mkb "$W/b-$ID" -- echo relative
	R=$W/$ID
	(cd "$W" && timeout -k 10 "$RUN_TIMEOUT" "$KR" --config "$CFG" run --id "$ID" "b-$ID" \
		</dev/null >"$R.out" 2>"$R.err")
	RC=$?
	want_rc 0 && want_out $'relative\n'
}
c_user_hostname() {
	new_id; mkb "$W/b-$ID" --user 1000:1000 --hostname "box-$ID" -- sh -c 'id -u; id -g; hostname'
	run "$ID" "$W/b-$ID"
	want_rc 0 && want_out "1000
1000
box-$ID
"
}
c_debug() {
	new_id; mkb "$W/b-$ID" -- echo hello
	kr "$ID" --config "$CFG" --debug run --id "$ID" "$W/b-$ID"
	want_rc 0 && want_out $'hello\n' || return 1
	echo "# --debug: $(wc -l <"$R.err") lines on stderr"
}
c_bad_id() {
	mkb "$W/b-badid" -- true
	kr badid --config "$CFG" run --id ../x "$W/b-badid"
	want_rc 125 && want_out '' && want_error '../x'
}

# Bad input: 125, one clear line, nothing left.
bad_bundle() {	# TEXT (in the error)
	run "$ID" "$W/b-$ID"
	want_rc 125 && want_out '' && want_error "$1"
}
c_no_bundle() { new_id; bad_bundle "$W/b-$ID"; }
c_no_config_json() {
	new_id; mkdir -p "$W/b-$ID/rootfs"
	bad_bundle config.json
}
c_bad_json() {
	new_id; mkb "$W/b-$ID" -- true
	printf '{ "ociVersion": "1.0.2", "process": { \n' >"$W/b-$ID/config.json"
	bad_bundle config.json
}
c_no_root_dir() {
	new_id; mkb "$W/b-$ID" -- true
	edit_config "$W/b-$ID" 'c["root"]["path"] = "no-such-rootfs"'
	bad_bundle no-such-rootfs
}
c_no_args() {
	new_id; mkb "$W/b-$ID" -- true
	edit_config "$W/b-$ID" 'del c["process"]["args"]'
	bad_bundle args
}
c_cfg_no_kernel() {
	new_id; mkb "$W/b-$ID" -- true
	local cfg=$W/no-kernel.toml
	printf 'kernel = "%s"\ninitrd = "%s"\n' "$W/no-such-bzImage" "$initrd" >"$cfg"
	kr "$ID" --config "$cfg" run --id "$ID" "$W/b-$ID"
	want_rc 125 && want_error "$W/no-such-bzImage"
}
c_agent_timeout() {
	# The guest cannot reach its agent within 1 s under TCG: the error says
	# so and shows the guest console (loglevel=7 so that it has lines).
	new_id; mkb "$W/b-$ID" -- true
	local cfg=$W/timeout.toml
	printf 'kernel = "%s"\ninitrd = "%s"\nboot_timeout_s = 1\nkernel_params = "loglevel=7"\n' \
		"$kernel" "$initrd" >"$cfg"
	kr "$ID" --config "$cfg" run --id "$ID" "$W/b-$ID"
	want_rc 125 && grep -q "did not answer within 1 s" "$R.err" && grep -q '^\[ *[0-9.]*\]' "$R.err"
}
c_libvirtd_down() {
	new_id; mkb "$W/b-$ID" -- true
	local cfg=$W/system.toml
	printf 'kernel = "%s"\ninitrd = "%s"\nlibvirt_uri = "qemu:///system"\n' "$kernel" "$initrd" >"$cfg"
	kr "$ID" --config "$cfg" run --id "$ID" "$W/b-$ID"
	want_rc 125 && want_error "libvirtd is not running (start it with scripts/libvirt-setup.sh)"
}
c_cfg_unknown_key() {
	new_id; mkb "$W/b-$ID" -- true
	local cfg=$W/unknown-key.toml
	printf '# a comment\nkernel = "%s"\nno_such_key = 1\ninitrd = "%s"\n' "$kernel" "$initrd" >"$cfg"
	kr "$ID" --config "$cfg" run --id "$ID" "$W/b-$ID"
	want_rc 125 && want_error "$cfg:3"
}
c_cfg_missing_file() {
	new_id; mkb "$W/b-$ID" -- true
	kr "$ID" --config "$W/no-such.toml" run --id "$ID" "$W/b-$ID"
	want_rc 125 && want_error "$W/no-such.toml"
}

tcase "--help: exit 0, mentions run, check, cleanup" c_help
tcase "--version prints $(cat VERSION)" c_version
tcase "unknown global flag: usage error" c_bad_flag
tcase "unknown run flag: usage error" c_bad_run_flag
tcase "run without a bundle: usage error" c_run_no_bundle
tcase "unknown subcommand: error" c_bad_subcommand
tcase "check: exit 0, reports kvm, libvirt, virtiofsd, kernel" c_check
tcase "cleanup of an unknown id: no-op, exit 0" c_cleanup_unknown
tcase "echo hello: exact stdout, empty stderr, exit 0" c_hello
[ "$LAST_RC" != 0 ] && { echo "# the first container failed: not running the rest"; finish; }
tcase "short form: kata-run --config F BUNDLE" c_short_form
tcase "stderr separate from stdout" c_stderr
tcase "exit status 3" c_exit3
tcase "exit status 0, no output" c_exit0
tcase "stdin from a file reaches cat, EOF ends it" c_stdin
tcase "stdin from a pipe" c_stdin_pipe
tcase "1 MiB of stdin: wc -c" c_stdin_big
tcase "1 MiB of binary stdin back through cat" c_stdin_big_cat
tcase "process.env and process.cwd" c_env_cwd
tcase "command not found: 127, error names it" c_not_found
tcase "command not executable: 126" c_not_executable
tcase "container kills itself with SIGKILL: 137" c_self_kill
tcase "SIGTERM forwarded: container's trap exits 42" c_sigterm
tcase "SIGHUP forwarded: container's trap exits 43" c_sighup
tcase "SIGINT forwarded: container's trap exits 44" c_sigint
tcase "SIGTERM forwarded to a container without a handler: 143" c_sigterm_kills
tcase "three SIGTERMs kill a container that ignores them: 137" c_sigterm_thrice
tcase "SIGINT during VM boot: quick non-zero exit" c_sigint_boot
tcase "kill -9 of kata-run (cleanup refused before); id stays taken; cleanup ID removes everything" c_kill9_cleanup
tcase "terminal: tty is /dev/pts/0, size 30x100" c_tty
tcase "terminal: input echoed once and read, exit status 5" c_tty_input
tcase "root.readonly: writes fail" c_readonly
tcase "writable rootfs: a write lands in the bundle on the host" c_writable
tcase "bind mounts from the host: read-only dir, writable file" c_bind_mounts
tcase "two runs at once" c_concurrent
tcase "--timings: stdout unchanged, timings on stderr" c_timings
tcase "--debug: stdout unchanged" c_debug
tcase "stdin left open, container does not read it: run ends" c_stdin_open
tcase "stdout reader goes away: kata-run ends, nothing left" c_stdout_closed
tcase "relative bundle path" c_relative_bundle
tcase "process.user and hostname" c_user_hostname
tcase "invalid --id: 125" c_bad_id
tcase "bundle dir missing: 125" c_no_bundle
tcase "bundle without config.json: 125" c_no_config_json
tcase "config.json not valid JSON: 125" c_bad_json
tcase "root.path missing: 125" c_no_root_dir
tcase "process.args missing: 125" c_no_args
tcase "config: missing kernel: 125, error names the path" c_cfg_no_kernel
tcase "agent not answering in time: 125, guest console shown" c_agent_timeout
if pgrep -x libvirtd >/dev/null; then
	skip_one "qemu:///system with libvirtd stopped: libvirtd runs here"
else
	tcase "qemu:///system with libvirtd stopped: 125, says how to start it" c_libvirtd_down
fi
tcase "config: unknown key: 125, error names file:line" c_cfg_unknown_key
tcase "config: --config FILE missing: 125" c_cfg_missing_file
finish
