#!/bin/bash
# A private containerd for tests and benchmarks (Debian 12, as root, no
# systemd).  Idempotent.
#
#   scripts/containerd-setup.sh start DIR    install containerd if missing,
#                                            write DIR/config.toml, start
#                                            containerd on DIR/containerd.sock
#                                            (no-op if it already runs there)
#   scripts/containerd-setup.sh stop DIR     SIGTERM, SIGKILL after 10 s, wait
#   scripts/containerd-setup.sh restart DIR  stop + start, keeping root/state
#   scripts/containerd-setup.sh status DIR   exit 0 if it runs and answers
#
# DIR holds everything of this containerd: config.toml, root/, state/,
# opt/, containerd.sock (+ .ttrpc), containerd.log, containerd.pid, and
# bin/containerd-shim-kata-run-v2 -> $REPO/$KR_BUILD/containerd-shim-kata-run-v2,
# with DIR/bin first in containerd's PATH so `ctr run --runtime
# io.containerd.kata-run.v2` finds our shim (the link is made even before
# the shim is built).  The CRI plugin is disabled (no CNI needed).  Shim
# sockets still go to /run/containerd/s (containerd's convention) and ctr's
# FIFOs to /run/containerd/fifo.
#
#   ctr --address DIR/containerd.sock ...
#
# Environment:
#   KR_BUILD                  build dir of the shim, relative to the repo or
#                             absolute (default build)
#   KR_CONTAINERD_LOG_LEVEL   [debug] level: trace|debug|info|warn|error
#                             (default info; debug makes containerd pass
#                             -debug to the shim's start)
#   KR_CONTAINERD_TIMEOUT     seconds to wait for the socket (default 30)
#
# Prints nothing on success; on failure an error and the tail of
# DIR/containerd.log on stderr, exit status 1 (2 for usage errors).
set -euo pipefail

me=containerd-setup
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "$me: $*" >&2; exit 1; }
log_tail() {
	[[ -f $dir/containerd.log ]] || return 0
	echo "$me: last lines of $dir/containerd.log:" >&2
	tail -n 25 "$dir/containerd.log" | sed 's/^/  /' >&2
}

case ${1:-} in
-h | --help | help) usage; exit 0 ;;
start | stop | restart | status) cmd=$1 ;;
"") usage >&2; exit 2 ;;
*) echo "$me: unknown command '$1' (start|stop|restart|status DIR; -h)" >&2; exit 2 ;;
esac
[[ $# == 2 && -n $2 ]] || { echo "$me: usage: $me $cmd DIR" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "must run as root"
mkdir -p "$2"
dir=$(cd "$2" && pwd)
sock=$dir/containerd.sock
pidfile=$dir/containerd.pid
level=${KR_CONTAINERD_LOG_LEVEL:-info}
tmo=${KR_CONTAINERD_TIMEOUT:-30}
case $level in trace | debug | info | warn | warning | error | fatal | panic) ;;
*) die "KR_CONTAINERD_LOG_LEVEL=$level: expected trace, debug, info, warn or error" ;;
esac
[[ $tmo =~ ^[1-9][0-9]*$ ]] || die "KR_CONTAINERD_TIMEOUT=$tmo: expected a positive integer"
# sun_path is 108 bytes; containerd also binds $sock.ttrpc.
((${#sock} + 6 < 108)) || die "DIR too long for a unix socket path: $sock.ttrpc"

# The pid of our containerd, if it still runs (the pid file may be stale
# and the pid reused: the process must be containerd with our config).
running_pid() {
	local pid cmdline
	[[ -s $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *containerd*"--config $dir/config.toml"* ]] || return 1
	# a zombie does not count
	[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
	echo "$pid"
}
answers() {
	[[ -S $sock ]] || return 1
	timeout 10 ctr --address "$sock" --connect-timeout 2s version >/dev/null 2>&1
}

install_containerd() {
	command -v containerd >/dev/null && command -v ctr >/dev/null && return 0
	local log
	log=$(mktemp)
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y containerd >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		die "apt-get install -y containerd failed"
	fi
	rm -f "$log"
	command -v containerd >/dev/null && command -v ctr >/dev/null ||
		die "containerd or ctr still missing after apt-get install containerd"
}

write_config() {
	local build=${KR_BUILD:-build} shim
	[[ $build == /* ]] || build=$repo/$build
	shim=$build/containerd-shim-kata-run-v2
	mkdir -p "$dir/bin" "$dir/root" "$dir/state" "$dir/opt"
	ln -sfn "$shim" "$dir/bin/containerd-shim-kata-run-v2"
	cat >"$dir/config.toml.tmp" <<-EOF
	# written by scripts/containerd-setup.sh; a private containerd for tests
	version = 2
	root = "$dir/root"
	state = "$dir/state"
	disabled_plugins = ["io.containerd.grpc.v1.cri"]

	[grpc]
	  address = "$sock"

	[ttrpc]
	  address = "$sock.ttrpc"

	[debug]
	  address = ""
	  level = "$level"

	[metrics]
	  address = ""

	[plugins."io.containerd.internal.v1.opt"]
	  path = "$dir/opt"
	EOF
	mv -f "$dir/config.toml.tmp" "$dir/config.toml"
}

do_start() {
	local pid i
	install_containerd
	write_config
	if pid=$(running_pid); then
		for ((i = 0; i < tmo * 10; i++)); do
			answers && return 0
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		log_tail
		die "containerd (pid $pid) runs with $dir/config.toml but does not answer on $sock"
	fi
	# A containerd killed with SIGKILL leaves its sockets; containerd
	# removes a stale socket itself, but not one another process serves.
	if answers; then
		die "something else already serves $sock"
	fi
	rm -f "$pidfile"
	# Own session (setsid: a test's timeout(1) or Ctrl-C on its process
	# group must not reach containerd), stdio detached, DIR/bin first in
	# PATH.  In a non-interactive shell the background subshell is not a
	# process group leader, so setsid execs in place and $! is containerd.
	(
		cd /
		exec env PATH="$dir/bin:$PATH" setsid containerd --config "$dir/config.toml" \
			</dev/null >>"$dir/containerd.log" 2>&1
	) &
	pid=$!
	echo "$pid" >"$pidfile"
	for ((i = 0; i < tmo * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null && rc=0 || rc=$?
			rm -f "$pidfile"
			log_tail
			die "containerd exited during start-up (status $rc)"
		fi
		answers && return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$pidfile"
	log_tail
	die "containerd did not answer on $sock within ${tmo}s (killed it)"
}

do_stop() {
	local pid i
	pid=$(running_pid) || { rm -f "$pidfile"; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		running_pid >/dev/null || break
		sleep 0.1
	done
	if running_pid >/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			running_pid >/dev/null || break
			sleep 0.1
		done
		running_pid >/dev/null && { log_tail; die "containerd (pid $pid) survived SIGKILL"; }
	fi
	rm -f "$pidfile"
}

case $cmd in
start) do_start ;;
stop) do_stop ;;
restart) do_stop; do_start ;;
status) running_pid >/dev/null && answers ;;
esac
