#!/usr/bin/env bash
# The containerd shim (containerd-shim-kata-run-v2, runtime
# io.containerd.kata-run.v2) end to end under a real containerd 1.6, driven
# with ctr as in ../shared/specs/containerd-shim-v2.md §8:
#
#   KR_BUILD=build bash tests/integration/test_containerd.sh
#
# A private containerd (scripts/containerd-setup.sh, in a temp dir, CRI
# disabled, a copy of $KR_BUILD/containerd-shim-kata-run-v2 on its PATH,
# with build/'s guest kernel and initramfs next to it), a busybox
# OCI image built offline (tests/lib/oci_image.sh) and imported, then:
# output and exit status, stdin (after the start, and already at EOF before
# it), 1 MiB of stdin, a terminal, --null-io, a missing command, the same id
# three times in a row, a detached task (exec, ps, pause/resume, metrics,
# kill, rm), two containers
# of one pod in one VM, an OOM kill with its /tasks/oom event, kill -9 of
# the shim, kill -9 of the VM (while the task runs, and frozen right after
# Create), and a containerd restart under a running task.  After every case a leak check of its ids: no shim daemon, QEMU or
# virtiofsd naming them, no /run/kata-run/{pods,vm}/ID, no mount of this
# test's dirs, no shim socket /run/containerd/s/<sha256(address/ns/id)>, and
# containerd no longer lists them.  Finally containerd is stopped and
# nothing of this run may be left; /run/containerd/s is compared with its
# listing from before the run.
#
# kill -9 of the shim: containerd sees the connection drop and runs the
# shim's `delete` action, which must end the task's VM and clean up; the
# leak check runs WITHOUT `kata-run cleanup` (only if something is left is
# `kata-run cleanup ID` run afterwards, so the following cases start
# clean).  A stale socket file after a kill -9 is only noted: the contract
# (spec §2.3) has the next `start` remove a stale socket.
#
# Environment:
#   KR_BUILD                 build dir (default build)
#   KR_CTR_RUNTIME           runtime name (default io.containerd.kata-run.v2);
#                            io.containerd.runc.v2 validates this harness:
#                            the VM-specific checks are skipped then
#   KR_RUN_TIMEOUT           seconds for one `ctr run` (default 120: TCG boots)
#   KR_CONTAINERD_LOG_LEVEL  containerd's log level (default debug: containerd
#                            then passes -debug to the shim)
#   KR_CTR_KEEP=1            keep the temp dir (containerd.log, outputs)
#   KR_TEST_CASES=REGEX      run only the cases whose name matches (development)
#
# On failure the tail of containerd.log is printed (per case: its lines
# about the case's ids) and the whole log is copied to
# ${TMPDIR:-/tmp}/kr-ctr-containerd.<pid>.log.
#
# Ids are k<pid>-NAME (VM kata-run-k<pid>-NAME), so that runs by others on
# this host never collide with ours.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
BUILD=${KR_BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
RT=${KR_CTR_RUNTIME:-io.containerd.kata-run.v2}
RUN_TIMEOUT=${KR_RUN_TIMEOUT:-120}
CTR_TIMEOUT=30	# every other ctr command
. tests/lib/tap.sh
. tests/lib/oci_image.sh
# ok STATUS NAME, returning STATUS (so that `ok $? NAME || diagnostics` works)
eval "_tap_$(declare -f ok)"
ok() { _tap_ok "$@"; return "$1"; }
skip_all() { n=$((n + 1)); skip=$((skip + 1)); echo "ok $n - containerd shim # SKIP $1"; finish; }
diag() { sed 's/^/#   /'; }

# The shim binary containerd resolves for RT (spec §2.1).
if [[ $RT == /* ]]; then
	SHIM_NAME=$(basename "$RT")
else
	IFS=. read -r -a parts <<<"$RT"
	((${#parts[@]} >= 2)) || { echo "KR_CTR_RUNTIME=$RT: not a runtime name"; exit 2; }
	SHIM_NAME=containerd-shim-${parts[-2]}-${parts[-1]}
fi
VM=0	# the VM checks only make sense for our shim
[[ $SHIM_NAME == containerd-shim-kata-run-v2 ]] && VM=1

[ "$(id -u)" = 0 ] || skip_all "needs root"
for tool in containerd ctr script sha256sum; do
	command -v "$tool" >/dev/null || skip_all "$tool not installed (apt-get install containerd)"
done
if ((VM)); then
	[ -x "$BUILD/containerd-shim-kata-run-v2" ] ||
		skip_all "$BUILD/containerd-shim-kata-run-v2 not built"
	for tool in qemu-system-x86_64 /usr/lib/qemu/virtiofsd; do
		command -v "$tool" >/dev/null || skip_all "$tool not installed (apt-get install qemu-system-x86)"
	done
	scripts/libvirt-setup.sh --no-daemons >/dev/null ||
		{ ok 1 "scripts/libvirt-setup.sh --no-daemons"; finish; }
elif [[ $RT != /* ]] && ! command -v "$SHIM_NAME" >/dev/null; then
	skip_all "$SHIM_NAME not installed"
fi

W=$(mktemp -d /tmp/kr-ctr.XXXXXX)
trap 'rm -rf "$W"' EXIT	# until the full clean-up below
D=$W/cd	# the private containerd
SOCK=$D/containerd.sock
NS=default
P=k$$-	# id prefix
IMG=docker.io/library/kr-busybox:latest
export KR_CONTAINERD_LOG_LEVEL=${KR_CONTAINERD_LOG_LEVEL:-debug}
# containerd runs a copy of the shim (a rebuild meanwhile cannot change or
# briefly remove the binary under test), with the guest it finds next to
# itself: our kernel and a copy of the initramfs from build/ (the guest
# needs the static agent, also under KR_BUILD=build-asan).
export KR_BUILD=$BUILD
if ((VM)); then
	mkdir -p "$W/shim"
	kernel=$(guest-kernel-config/build.sh --print-path 2>"$W/kernel.log") ||
		{ diag <"$W/kernel.log"; ok 1 "guest kernel builds"; finish; }
	make -s build/kata-initramfs.cpio.gz >"$W/make.log" 2>&1 ||
		{ diag <"$W/make.log"; ok 1 "initramfs builds"; finish; }
	cp "$BUILD/containerd-shim-kata-run-v2" build/kata-initramfs.cpio.gz "$W/shim/" &&
		ln -s "$kernel" "$W/shim/bzImage" || { ok 1 "copy of the shim in $W/shim"; finish; }
	echo "# shim: $BUILD/containerd-shim-kata-run-v2 (sha256 $(sha256sum "$W/shim/containerd-shim-kata-run-v2" | cut -c1-16), run from a copy)"
	KR_BUILD=$W/shim
fi
SOCKDIR=/run/containerd/s
ls -1 "$SOCKDIR" 2>/dev/null | sort >"$W/sockets.before"
IDS=() BG_PIDS=() EV_PID=

# ---- clean-up (EXIT) ----------------------------------------------------------
# Every id this run used: tasks killed and removed, containers removed,
# containerd stopped, shim daemons of this containerd killed, VMs removed
# with `kata-run cleanup`.  Anything found here is printed ("# left at
# exit"); the TAP verdict about leaks comes from the cases themselves.
force_remove() {	# ID...: best effort, quiet
	local id
	scripts/containerd-setup.sh status "$D" 2>/dev/null || return 0
	for id; do
		timeout 30 ctr -a "$SOCK" task kill -a -s SIGKILL "$id" >/dev/null 2>&1
	done
	for id; do
		timeout 60 ctr -a "$SOCK" task rm -f "$id" >/dev/null 2>&1
		timeout 30 ctr -a "$SOCK" containers rm "$id" >/dev/null 2>&1
	done
}
kr_cleanup() {	# ID...: kata-run cleanup (VM mode only)
	((VM)) && [ -x "$BUILD/kata-run" ] && [ $# -gt 0 ] &&
		timeout 120 "$BUILD/kata-run" cleanup "$@" >/dev/null 2>&1
	return 0
}
# kill_shims ID...: SIGKILL the shim daemons of these ids (after a failed
# case, so that kata-run cleanup and containerd can remove the rest); waits
# until they are reaped (kata-run cleanup counts a zombie owner as alive).
kill_shims() {
	local id pids=() p
	for id; do
		for p in $(pgrep -f -- "$SHIM_NAME .*-id ${id//./\\.}( |\$)"); do pids+=("$p"); done
	done
	((${#pids[@]})) || return 0
	echo "# killing shim(s) ${pids[*]} of $*"
	kill -KILL "${pids[@]}" 2>/dev/null
	for _ in $(seq 100); do exists_any "${pids[@]}" || break; sleep 0.1; done
	sleep 1	# containerd runs the shim's delete
}
exists_any() { local p; for p; do [ -e "/proc/$p" ] && return 0; done; return 1; }
our_shims() { pgrep -f -- "$SHIM_NAME .*-address $SOCK( |\$)"; }
cleanup() {
	local rc=$? p left
	trap - EXIT
	[ -n "$EV_PID" ] && kill "$EV_PID" 2>/dev/null
	for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	((${#IDS[@]})) && force_remove "${IDS[@]}"
	scripts/containerd-setup.sh stop "$D" || echo "# containerd-setup.sh stop failed"
	left=$(our_shims)
	for p in $left; do
		echo "# left at exit: shim $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
		kill -KILL "$p" 2>/dev/null
	done
	# kata-run cleanup refuses while the owner exists, zombie included
	[ -n "$left" ] && for _ in $(seq 100); do
		exists_any $left || break
		sleep 0.1
	done
	((${#IDS[@]})) && kr_cleanup "${IDS[@]}"
	left=$(pgrep -af -- "$P|$W" | grep -v -e pgrep -e "^$$ ")
	[ -n "$left" ] && { echo "# left at exit (processes):"; echo "$left" | diag; }
	for p in $(comm -13 "$W/sockets.before" <(ls -1 "$SOCKDIR" 2>/dev/null | sort)); do
		grep -qxF "$p" "$W/our-sockets" 2>/dev/null && rm -f "$SOCKDIR/$p"
	done
	# ctr's FIFO dirs of tasks ctr did not delete itself (containerd did,
	# after a shim died): ctr's leftovers, not the shim's
	find /run/containerd/fifo -mindepth 2 -maxdepth 2 -name "$P*" -printf '%h\n' 2>/dev/null |
		sort -u | xargs -r rm -rf
	if [ "$fail" != 0 ] && [ -f "$D/containerd.log" ]; then
		echo "# last lines of $D/containerd.log:"
		tail -n 60 "$D/containerd.log" | cut -c1-400 | diag
		cp "$D/containerd.log" "${TMPDIR:-/tmp}/kr-ctr-containerd.$$.log" &&
			echo "# whole log: ${TMPDIR:-/tmp}/kr-ctr-containerd.$$.log"
	fi
	if grep -qF "$W" /proc/self/mountinfo; then
		echo "# mounts left under $W, not removing it:"
		grep -F "$W" /proc/self/mountinfo | diag
	elif [ "${KR_CTR_KEEP:-0}" = 1 ]; then
		echo "# kept $W"
	else
		rm -rf "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers ----------------------------------------------------------------------
# new_id NAME: ID=k<pid>-NAME, recorded for this case's leak check and the
# EXIT clean-up; its shim socket name is remembered.
new_id() {
	ID=$P$1
	IDS+=("$ID") CASE_IDS+=("$ID")
	sock_of "$ID" >>"$W/our-sockets"
}
sock_of() { printf '%s' "$SOCK/$NS/$1" | sha256sum | cut -d' ' -f1; }

# c ARGS...: one ctr command (CTR_TIMEOUT), stdout+stderr to $W/c.out, RC.
c() {
	timeout -k 5 "$CTR_TIMEOUT" ctr -a "$SOCK" "$@" </dev/null >"$W/c.out" 2>&1
	RC=$?
	return $RC
}
# crun NAME [run options] -- ID ARGS...: `ctr run --runtime RT [options]
# IMG ID ARGS`.  stdin from $IN (default /dev/null; ctr run always passes
# its stdin on), output in $W/NAME.out/.err, status in RC, R=$W/NAME.
crun() {
	local name=$1 opts=()
	shift
	while [[ $# -gt 0 && $1 != -- ]]; do opts+=("$1"); shift; done
	shift
	R=$W/$name
	timeout -k 10 "$RUN_TIMEOUT" ctr -a "$SOCK" run --runtime "$RT" "${opts[@]}" "$IMG" "$@" \
		<"${IN:-/dev/null}" >"$R.out" 2>"$R.err"
	RC=$?
	return "$RC"
}
show() {	# what the last crun printed
	echo "# stdout:"; head -c 2000 "$R.out" | diag
	[ -s "$R.err" ] && { echo "# stderr:"; head -c 3000 "$R.err" | diag; }
	return 0
}
want_rc() {
	[ "$RC" = "$1" ] && return 0
	echo "# exit status: want $1, got $RC"; show; return 1
}
want_out() {
	cmp -s "$R.out" <(printf '%s' "$1") && return 0
	echo "# stdout differs (want, got):"
	diff <(printf '%s' "$1") "$R.out" | head -20 | diag
	show; return 1
}
# status ID: the STATUS column of `ctr task ls` ("" when not listed)
status() {
	timeout -k 5 "$CTR_TIMEOUT" ctr -a "$SOCK" task ls 2>/dev/null |
		awk -v id="$1" '$1 == id { print $3 }'
}
# wait_status ID SECONDS STATUS...: until ID's status is one of STATUS
# ("gone" = not listed).  Sets ST.
wait_status() {
	local id=$1 secs=$2 s i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		ST=$(status "$id")
		for s; do
			[[ $ST == "$s" || ($s == gone && -z $ST) ]] && return 0
		done
		sleep 0.2
	done
	echo "# $id: status '${ST:-gone}' after ${secs}s, want one of: $*"
	return 1
}
check() {	# NAME COMMAND...: one TAP line for a command's status
	local name=$1
	shift
	"$@"
	ok $? "$name"
}
vm_procs() {	# ID: QEMU processes of the pod VM named after ID
	pgrep -af -- "guest=kata-run-$1," | grep -E '^[0-9]+ [^ ]*qemu-system'
}

# What is left of one id: processes, state dirs, mounts, sockets, and
# containerd's own records.
leftovers() {
	local id=$1 d s re
	re="${id//./\\.}([^A-Za-z0-9_.-]|\$)"
	pgrep -af -- "$SHIM_NAME .*-id $re" | sed 's/^/shim: /'
	pgrep -af -- "(kata-run-|/run/kata-run/vm/|/run/kata-run/pods/)$re" |
		grep -v -e "$SHIM_NAME " | sed 's/^/process: /'
	for d in "/run/kata-run/vm/$id" "/run/kata-run/pods/$id"; do
		[ -e "$d" ] && echo "dir $d"
	done
	grep -F -e "/run/kata-run/pods/$id/" -e "$D/state/io.containerd.runtime.v2.task/$NS/$id/" \
		/proc/self/mountinfo | sed 's/^/mount: /'
	s=$(sock_of "$id")
	if [ -e "$SOCKDIR/$s" ]; then
		if grep -qF "$SOCKDIR/$s" /proc/net/unix; then
			echo "socket $SOCKDIR/$s (still served)"
		elif [ "${STALE_SOCKET_OK:-0}" = 1 ]; then
			echo "# note: stale socket $SOCKDIR/$s left (shim killed; the next start removes it)" >&2
			rm -f "$SOCKDIR/$s"
		else
			echo "socket $SOCKDIR/$s (stale)"
		fi
	fi
	if scripts/containerd-setup.sh status "$D" 2>/dev/null; then
		[ -n "$(status "$id")" ] && echo "containerd: task $id still listed"
		timeout 30 ctr -a "$SOCK" containers ls -q 2>/dev/null | grep -qxF "$id" &&
			echo "containerd: container $id still listed"
	fi
}
# no_leaks ID...: nothing left of any ID; processes get LEAK_WAIT (15) s
# to go away (containerd runs the shim's delete after the connection closes).
no_leaks() {
	local out id i t0=${EPOCHREALTIME/./}
	for ((i = 0; i < ${LEAK_WAIT:-15} * 2; i++)); do
		out=$(for id; do leftovers "$id"; done 2>&1)
		if ! grep -v '^# note' <<<"$out" | grep -q .; then
			[ -n "$out" ] && echo "$out"
			((${EPOCHREALTIME/./} - t0 > 2000000)) &&
				echo "# everything of $* went away only after $(((${EPOCHREALTIME/./} - t0) / 100000))00 ms"
			return 0
		fi
		sleep 0.5
	done
	echo "# left behind:"
	echo "$out" | diag
	return 1
}
# tcase NAME FUNC: FUNC prints its own TAP lines; then one line for the
# leak check of the ids it used.  After a leak the ids are removed by force
# (and with kata-run cleanup) so the next case starts clean.
tcase() {
	local name=$1 fn=$2 t0=$SECONDS rc fail0=$fail
	# Development: KR_TEST_CASES=REGEX runs only the matching cases.
	if [ -n "${KR_TEST_CASES:-}" ] && ! [[ $name =~ $KR_TEST_CASES ]]; then
		return 0
	fi
	CASE_IDS=()
	echo "# --- $name"
	"$fn"
	if ((${#CASE_IDS[@]})); then
		no_leaks "${CASE_IDS[@]}"
		rc=$?
		ok $rc "$name: nothing left behind"
		if [ "$fail" != "$fail0" ]; then
			echo "# containerd.log about ${CASE_IDS[*]} (last 40 lines):"
			grep -F "${CASE_IDS[@]/#/-e}" "$D/containerd.log" 2>/dev/null | tail -n 40 |
				cut -c1-400 | diag
		fi
		if ((rc)); then
			force_remove "${CASE_IDS[@]}"
			kill_shims "${CASE_IDS[@]}"
			kr_cleanup "${CASE_IDS[@]}"
			force_remove "${CASE_IDS[@]}"
			LEAK_WAIT=5 no_leaks "${CASE_IDS[@]}" >/dev/null ||
				{ echo "# still left after force remove + kata-run cleanup:";
				  LEAK_WAIT=1 no_leaks "${CASE_IDS[@]}"; }
		fi
	fi
	echo "# $name took $((SECONDS - t0)) s"
}

# ---- set-up ------------------------------------------------------------------------
echo "# runtime $RT (shim $SHIM_NAME), containerd $(containerd --version | awk '{print $3}'), dir $W"
out=$(scripts/containerd-setup.sh start "$D" 2>&1)
ok $? "private containerd starts (scripts/containerd-setup.sh start)" ||
	{ echo "$out" | diag; finish; }
make_busybox_image "$W/image.tar" "$IMG" >"$W/image.log" 2>&1
ok $? "busybox OCI image built" || { diag <"$W/image.log"; finish; }
c images import "$W/image.tar"
ok $? "ctr images import" || { diag <"$W/c.out"; finish; }
# All events of the run, for the OOM case and for diagnostics.
timeout -k 5 3600 ctr -a "$SOCK" events >"$W/events.out" 2>&1 &
EV_PID=$!

# ---- cases ---------------------------------------------------------------------------
c_echo() {
	new_id t1
	crun t1 --rm -- "$ID" echo hi
	want_rc 0 && want_out $'hi\n'
	ok $? "ctr run --rm ... echo hi: prints exactly hi, exit 0"
}
c_exit7() {
	new_id exit7
	crun exit7 --rm -- "$ID" sh -c 'echo out; echo err >&2; exit 7'
	want_rc 7 && want_out $'out\n' && grep -qx err "$R.err" ||
		{ echo "# want err on stderr"; show; false; }
	ok $? "sh -c 'exit 7': ctr exits 7; stdout and stderr apart"
}
# stdin.  ctr hooks CloseIO to its stdin's EOF only after Create returns
# (cmd/ctr/commands/tasks: stdinC.closer is set after NewTask), so an EOF
# that comes earlier reaches the shim only as EOF on the stdin FIFO.  The
# runc shim keeps a writer of its own on that FIFO and waits for CloseIO:
# with runc such an early EOF is lost and cat never ends (a ctr race, not
# tested).  Spec §5.2: EOF after the client's writer attached, or CloseIO,
# closes the process's stdin; with a VM Create takes seconds, so `printf |
# ctr run` always takes the FIFO-EOF path there.
# feed_after_start ID FILE: FILE to stdout once ID is RUNNING.
feed_after_start() { wait_status "$1" 60 RUNNING >/dev/null; cat "$2"; }
c_stdin() {
	new_id stdin
	printf 'a\nb\n' >"$W/in-small"
	R=$W/stdin
	feed_after_start "$ID" "$W/in-small" |
		timeout -k 10 "$RUN_TIMEOUT" ctr -a "$SOCK" run --runtime "$RT" --rm "$IMG" "$ID" cat \
			>"$R.out" 2>"$R.err"
	RC=$?
	want_rc 0 && want_out $'a\nb\n'
	ok $? "stdin written after the start: cat echoes it, EOF (CloseIO) ends it"
}
c_stdin_early() {
	new_id stdin2
	R=$W/stdin2
	printf 'a\nb\n' |
		timeout -k 10 "$RUN_TIMEOUT" ctr -a "$SOCK" run --runtime "$RT" --rm "$IMG" "$ID" cat \
			>"$R.out" 2>"$R.err"
	RC=$?
	want_rc 0 && want_out $'a\nb\n'
	ok $? "printf 'a\\nb\\n' | ctr run ... cat: echoed, EOF on the FIFO ends cat"
}
c_stdin_big() {
	new_id stdinbig
	head -c 1048576 /dev/urandom >"$W/in-big"
	R=$W/stdinbig
	if ((VM)); then cat "$W/in-big"; else feed_after_start "$ID" "$W/in-big"; fi |
		timeout -k 10 "$RUN_TIMEOUT" ctr -a "$SOCK" run --runtime "$RT" --rm "$IMG" "$ID" wc -c \
			>"$R.out" 2>"$R.err"
	RC=$?
	want_rc 0 && [[ $(tr -d ' \n' <"$R.out") == 1048576 ]] || { show; false; }
	ok $? "1 MiB of stdin$( ((VM)) || echo ' (after the start)'): wc -c counts 1048576"
}
c_tty() {
	new_id tty
	R=$W/tty
	# script gives ctr a terminal (33x91); ctr -t passes its size on with
	# ResizePty after Start, so the container may run before it arrives:
	# it waits up to 5 s for that size.
	timeout -k 10 "$RUN_TIMEOUT" script -qec "stty rows 33 cols 91; ctr -a '$SOCK' run --runtime '$RT' --rm -t '$IMG' '$ID' sh -c 'tty; n=0; while [ \"\$(stty size 2>/dev/null)\" != \"33 91\" ] && [ \$n -lt 50 ]; do n=\$((n + 1)); sleep 0.1; done; stty size; exit 3'" /dev/null \
		</dev/null >"$R.out" 2>"$R.err"
	RC=$?
	tr -d '\r\0' <"$R.out" >"$R.clean"
	# (a leading "^@": script's terminal echoes the NUL it sends for EOF on
	# its stdin)
	want_rc 3 && grep -q '/dev/pts/0$' "$R.clean" || { show; false; }
	ok $? "ctr run -t: tty is /dev/pts/0 (TTY mode), exit status 3"
	grep -qx '33 91' "$R.clean"
	ok $? "ctr run -t: the terminal size 33x91 reaches the container" || show
}
c_null_io() {
	new_id nullio
	crun nullio --rm --null-io -- "$ID" sh -c 'echo lost; exit 4'
	want_rc 4 && want_out ''
	ok $? "ctr run --null-io: exit status 4, no output"
}
c_not_found() {
	new_id nope
	crun nope --rm -- "$ID" /bin/nope
	[ "$RC" != 0 ] && grep -q nope "$R.err" || { echo "# want a non-zero exit and an error naming /bin/nope"; show; false; }
	ok $? "missing command: ctr fails, the error names it"
	[ -s "$R.err" ] && echo "# error: $(head -c 400 "$R.err" | tr '\n' ' ')"
}

# The same id again at once: the first run's shim must not be found still
# serving its socket (start would hand containerd a daemon that is exiting).
c_rerun() {
	local i
	new_id again
	for i in 1 2 3; do
		crun "again$i" --rm -- "$ID" echo "run $i"
		want_rc 0 && want_out "run $i"$'\n'
		ok $? "ctr run --rm, the same id right after the previous run ($i of 3)"
	done
}

c_detached() {
	local pid
	new_id c1
	crun c1 -d -- "$ID" sleep 1000
	ok $? "ctr run -d ... sleep 1000" || { show; return 1; }
	wait_status "$ID" 10 RUNNING
	ok $? "ctr task ls: RUNNING"
	pid=$(timeout 30 ctr -a "$SOCK" task ls | awk -v id="$ID" '$1 == id { print $2 }')
	[[ $pid =~ ^[1-9][0-9]*$ ]] && [ -d "/proc/$pid" ]
	ok $? "ctr task ls: a live host pid ($pid)"
	if ((VM)); then
		# spec §2.8: for a VM runtime, the VMM's pid
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "guest=kata-run-$ID,"
		ok $? "the task's pid is the pod VM's QEMU" ||
			echo "# pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
	fi
	c task exec --exec-id e1 "$ID" sh -c 'echo from exec'
	[ "$RC" = 0 ] && [ "$(cat "$W/c.out")" = "from exec" ]
	ok $? "ctr task exec: prints 'from exec'" || diag <"$W/c.out"
	c task exec --exec-id e2 "$ID" sh -c 'exit 5'
	[ "$RC" = 5 ]
	ok $? "ctr task exec: exit status 5 (got $RC)" || diag <"$W/c.out"
	c task exec --exec-id e3 "$ID" /bin/nope
	[ "$RC" != 0 ] && grep -q nope "$W/c.out"
	ok $? "ctr task exec of a missing command fails and names it" || diag <"$W/c.out"
	c task ps "$ID"
	[ "$RC" = 0 ] && awk 'NR > 1 && $1 ~ /^[0-9]+$/ { f = 1 } END { exit !f }' "$W/c.out"
	ok $? "ctr task ps: at least one pid" || diag <"$W/c.out"
	c task pause "$ID" && wait_status "$ID" 10 PAUSED
	ok $? "ctr task pause: PAUSED" || diag <"$W/c.out"
	c task resume "$ID" && wait_status "$ID" 10 RUNNING
	ok $? "ctr task resume: RUNNING" || diag <"$W/c.out"
	c task exec --exec-id e4 "$ID" echo after resume
	[ "$RC" = 0 ] && [ "$(cat "$W/c.out")" = "after resume" ]
	ok $? "exec after resume works" || diag <"$W/c.out"
	c task metrics "$ID"
	[ "$RC" = 0 ] && grep -q '^memory\.' "$W/c.out" && grep -q '^pids\.' "$W/c.out"
	ok $? "ctr task metrics: exit 0, memory.* and pids.* lines" || diag <"$W/c.out"
	c task rm "$ID"
	[ "$RC" != 0 ] && [ "$(status "$ID")" = RUNNING ]
	ok $? "ctr task rm of a running task fails, task keeps running" || diag <"$W/c.out"
	c task kill -s SIGKILL "$ID" && wait_status "$ID" 30 STOPPED
	ok $? "ctr task kill -s SIGKILL: STOPPED" || diag <"$W/c.out"
	c task rm "$ID"
	ok $? "ctr task rm" || diag <"$W/c.out"
	c containers rm "$ID"
	ok $? "ctr containers rm" || diag <"$W/c.out"
}

c_pod() {
	local pod c2 shims n_vm
	new_id pod1; pod=$ID
	new_id c2; c2=$ID
	crun pod1 -d --annotation "io.kubernetes.cri.sandbox-id=$pod" \
		--annotation io.kubernetes.cri.container-type=sandbox -- "$pod" sleep 1000
	ok $? "pod sandbox container started (ctr run -d, sandbox-id=$pod)" || { show; return 1; }
	crun c2 -d --annotation "io.kubernetes.cri.sandbox-id=$pod" \
		--annotation io.kubernetes.cri.container-type=container -- "$c2" sleep 1000
	ok $? "second container of the pod started" || show
	wait_status "$pod" 10 RUNNING && wait_status "$c2" 10 RUNNING
	ok $? "both RUNNING"
	shims=$(our_shims | wc -l)
	[ "$shims" = 1 ]
	ok $? "one shim daemon for the pod (got $shims)" || pgrep -af -- "$SHIM_NAME " | diag
	if ((VM)); then
		n_vm=$(vm_procs "$pod" | wc -l)
		[ "$n_vm" = 1 ] && [ -z "$(vm_procs "$c2")" ]
		ok $? "exactly one QEMU for the pod (got $n_vm), none named after $c2" ||
			pgrep -af -- "qemu-system" | cut -c1-300 | diag
	fi
	c task exec --exec-id e1 "$c2" sh -c 'echo in c2'
	[ "$RC" = 0 ] && [ "$(cat "$W/c.out")" = "in c2" ]
	ok $? "exec in the second container" || diag <"$W/c.out"
	# The app container goes first: the sandbox and the VM stay.
	c task kill -s SIGKILL "$c2" && wait_status "$c2" 30 STOPPED && c task rm "$c2" &&
		c containers rm "$c2"
	ok $? "second container killed and removed" || diag <"$W/c.out"
	sleep 1
	[ "$(status "$pod")" = RUNNING ] && [ "$(our_shims | wc -l)" = 1 ] &&
		{ ((!VM)) || [ "$(vm_procs "$pod" | wc -l)" = 1 ]; }
	ok $? "after it: the sandbox still RUNNING, shim and VM still there"
	c task exec --exec-id e2 "$pod" sh -c 'echo still here'
	[ "$RC" = 0 ] && [ "$(cat "$W/c.out")" = "still here" ]
	ok $? "exec in the sandbox after the other container left" || diag <"$W/c.out"
	c task kill -s SIGKILL "$pod" && wait_status "$pod" 30 STOPPED && c task rm "$pod" &&
		c containers rm "$pod"
	ok $? "sandbox killed and removed" || diag <"$W/c.out"
	if ((VM)); then
		for _ in $(seq 30); do [ -z "$(vm_procs "$pod")" ] && break; sleep 0.5; done
		[ -z "$(vm_procs "$pod")" ]
		ok $? "the pod VM is gone"
	fi
}

c_oom() {
	local i
	new_id oom1
	crun oom1 --rm --memory-limit 33554432 -- "$ID" sh -c 'x=a; while :; do x=$x$x; done'
	want_rc 137
	ok $? "--memory-limit 32 MiB, a growing shell variable: ctr exits 137"
	for i in $(seq 50); do
		grep -q "/tasks/oom .*\"container_id\":\"$ID\"" "$W/events.out" && break
		sleep 0.2
	done
	grep -q "/tasks/oom .*\"container_id\":\"$ID\"" "$W/events.out"
	ok $? "/tasks/oom event for $ID" || grep -F "$ID" "$W/events.out" | cut -c1-300 | diag
	grep -q "/tasks/exit .*\"container_id\":\"$ID\".*\"exit_status\":137" "$W/events.out"
	ok $? "/tasks/exit event with exit_status 137" || grep -F "/tasks/exit" "$W/events.out" | grep -F "$ID" | diag
}

c_kill_shim() {
	local i
	new_id kill1
	crun kill1 -d -- "$ID" sleep 1000
	ok $? "ctr run -d ... sleep 1000" || { show; return 1; }
	wait_status "$ID" 10 RUNNING || return 1
	((VM)) && [ -z "$(vm_procs "$ID")" ] && echo "# no QEMU named kata-run-$ID found"
	pkill -9 -f -- "$SHIM_NAME .*-id $ID( |\$)"
	ok $? "pkill -9 the shim daemon"
	wait_status "$ID" 60 STOPPED gone
	ok $? "the task ends within 60 s (${ST:-gone})"
	c task rm "$ID" || grep -q 'not found' "$W/c.out"
	ok $? "ctr task rm works (or the task is already gone)" || diag <"$W/c.out"
	c containers rm "$ID"
	ok $? "ctr containers rm" || diag <"$W/c.out"
	STALE_SOCKET_OK=1
}

c_kill_vm() {
	local bg
	new_id vm1
	R=$W/vm1
	timeout -k 10 "$RUN_TIMEOUT" ctr -a "$SOCK" run --runtime "$RT" "$IMG" "$ID" \
		sh -c 'echo started; exec sleep 1000' </dev/null >"$R.out" 2>"$R.err" &
	bg=$!
	BG_PIDS+=("$bg")
	# Its output, not only RUNNING: the shim reports RUNNING while its
	# Start is still under way (a VM killed then is a different case).
	for _ in $(seq $((RUN_TIMEOUT * 5))); do
		grep -qx started "$R.out" && break
		kill -0 "$bg" 2>/dev/null || break
		sleep 0.2
	done
	grep -qx started "$R.out" && [ "$(status "$ID")" = RUNNING ]
	ok $? "ctr run (attached, in the background): the container runs" || { show; return 1; }
	pkill -9 -f -- "guest=kata-run-$ID,"
	ok $? "pkill -9 the VM's QEMU"
	for _ in $(seq 120); do kill -0 "$bg" 2>/dev/null || break; sleep 0.5; done
	if kill -0 "$bg" 2>/dev/null; then
		RC=running
	else
		wait "$bg"; RC=$?
	fi
	[[ $RC != running && $RC != 0 ]]
	ok $? "ctr run ends within 60 s with a non-zero status (got $RC)" || show
	# ctr run (attached) deletes the task itself when it ends.
	wait_status "$ID" 30 STOPPED gone
	ok $? "ctr task ls: STOPPED or gone (${ST:-gone})"
	c task rm "$ID" || grep -q 'not found' "$W/c.out"
	ok $? "ctr task rm works (or the task is already gone)" || diag <"$W/c.out"
	c containers rm "$ID"
	ok $? "ctr containers rm" || diag <"$W/c.out"
}

# The VM dies around Start: frozen (SIGSTOP) as soon as containerd logs
# the shim's /tasks/create event (debug level; `ctr events` is too late:
# Start is done by then), killed 2 s later.  Start then fails, or the task
# ends: either way the task must not stay CREATED, and must be removable.
c_kill_vm_at_start() {
	local w
	new_id vm2
	R=$W/vm2
	(
		exec 3< <(exec timeout "$RUN_TIMEOUT" tail -n0 -F "$D/containerd.log" 2>/dev/null)
		t=$!
		grep -m1 -q 'topic=/tasks/create' <&3
		pkill -STOP -f -- "guest=kata-run-$ID,"
		kill "$t" 2>/dev/null
		sleep 2
		pkill -KILL -f -- "guest=kata-run-$ID,"
	) &
	w=$!
	BG_PIDS+=("$w")
	timeout -k 10 "$RUN_TIMEOUT" ctr -a "$SOCK" run --runtime "$RT" "$IMG" "$ID" sleep 1000 \
		</dev/null >"$R.out" 2>"$R.err"
	RC=$?
	wait "$w"
	[ "$RC" != 0 ] && [ "$RC" != 124 ] && [ "$RC" != 137 ]
	ok $? "ctr run ends with an error or a non-zero status (got $RC)" || show
	[ -s "$R.err" ] && echo "# ctr: $(head -c 300 "$R.err" | tr '\n' ' ')"
	wait_status "$ID" 30 STOPPED gone
	ok $? "the task does not stay CREATED/RUNNING (${ST:-gone})"
	c task rm "$ID" || grep -q 'not found' "$W/c.out"
	ok $? "ctr task rm works (or the task is already gone)" || diag <"$W/c.out"
	c containers rm "$ID"
	ok $? "ctr containers rm" || diag <"$W/c.out"
}

c_restart() {
	new_id r1
	crun r1 -d -- "$ID" sleep 1000
	ok $? "ctr run -d ... sleep 1000" || { show; return 1; }
	wait_status "$ID" 10 RUNNING || return 1
	out=$(scripts/containerd-setup.sh restart "$D" 2>&1)
	ok $? "containerd restarted" || { echo "$out" | diag; return 1; }
	wait_status "$ID" 20 RUNNING
	ok $? "after the restart the task is still RUNNING"
	c task exec --exec-id e1 "$ID" sh -c 'echo after restart'
	[ "$RC" = 0 ] && [ "$(cat "$W/c.out")" = "after restart" ]
	ok $? "exec after the restart" || diag <"$W/c.out"
	c task kill -s SIGKILL "$ID" && wait_status "$ID" 30 STOPPED
	ok $? "ctr task kill -s SIGKILL: STOPPED" || diag <"$W/c.out"
	c task rm "$ID" && c containers rm "$ID"
	ok $? "ctr task rm, ctr containers rm" || diag <"$W/c.out"
}

# The end: no task, no shim of ours; containerd stops; nothing of this run
# remains, and /run/containerd/s holds nothing new.
c_final() {
	local left new s
	[ -n "$EV_PID" ] && { kill "$EV_PID" 2>/dev/null; wait "$EV_PID" 2>/dev/null; EV_PID=; }
	left=$(timeout 30 ctr -a "$SOCK" task ls -q 2>&1; timeout 30 ctr -a "$SOCK" containers ls -q 2>&1)
	[ -z "$left" ]
	ok $? "containerd lists no task and no container" || echo "$left" | diag
	scripts/containerd-setup.sh stop "$D"
	ok $? "containerd stops"
	sleep 1
	left=$(pgrep -af -- "$P|$W" | grep -v -e pgrep -e "^$$ ")
	[ -z "$left" ]
	ok $? "no process mentions this run's ids or dir" || echo "$left" | diag
	left=$(grep -F -e "$W" -e "/run/kata-run/pods/$P" /proc/self/mountinfo)
	[ -z "$left" ]
	ok $? "no mount mentions this run's dir or pods" || echo "$left" | diag
	left=$(find /run/kata-run/vm /run/kata-run/pods -maxdepth 1 -name "$P*" 2>/dev/null)
	[ -z "$left" ]
	ok $? "no /run/kata-run/{vm,pods}/$P*" || echo "$left" | diag
	# New sockets: ours by name (sha256 of address/ns/id), or served by a
	# process of this run; others on the host may come and go meanwhile.
	new=$(comm -13 "$W/sockets.before" <(ls -1 "$SOCKDIR" 2>/dev/null | sort))
	left=
	for s in $new; do
		grep -qxF "$s" "$W/our-sockets" 2>/dev/null && { left+="$s (ours)"$'\n'; continue; }
		grep -qF "$SOCKDIR/$s" /proc/net/unix || left+="$s (stale, not served)"$'\n'
	done
	[ -z "$left" ]
	ok $? "no new socket left in $SOCKDIR" || echo "$left" | diag
	[ -n "$new" ] && [ -z "$left" ] && echo "# new in $SOCKDIR (others', served): $new"
}

tcase "echo hi" c_echo
[ "$fail" != 0 ] && { echo "# the first container failed: not running the rest"; finish; }
tcase "exit status 7" c_exit7
tcase "stdin" c_stdin
if ((VM)); then
	tcase "stdin at EOF before the task starts" c_stdin_early
else
	skip_one "stdin at EOF before the start: lost with runc (ctr race, see c_stdin)"
fi
tcase "1 MiB stdin" c_stdin_big
tcase "terminal" c_tty
tcase "--null-io" c_null_io
tcase "missing command" c_not_found
tcase "the same id three times in a row" c_rerun
tcase "detached task: exec, ps, pause/resume, metrics, kill, rm" c_detached
tcase "two containers in one pod" c_pod
tcase "OOM kill and event" c_oom
STALE_SOCKET_OK=0
tcase "kill -9 of the shim" c_kill_shim
STALE_SOCKET_OK=0
if ((VM)); then
	tcase "kill -9 of the VM" c_kill_vm
	if [ "$KR_CONTAINERD_LOG_LEVEL" = debug ]; then
		tcase "VM frozen at Create, then killed" c_kill_vm_at_start
	else
		skip_one "VM frozen at Create: needs KR_CONTAINERD_LOG_LEVEL=debug"
	fi
else
	skip_one "kill -9 of the VM: $RT runs no VM"
	skip_one "VM frozen at Create, then killed: $RT runs no VM"
fi
tcase "containerd restart under a running task" c_restart
c_final
finish
