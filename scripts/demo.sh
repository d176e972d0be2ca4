#!/usr/bin/env bash
# Run the example bundle (examples/hello) through kata-agent on this host:
# the agent is started on a Unix socket in a private mount namespace, the
# bundle's container is created, started, streamed and removed through the
# agent API, then the agent is shut down and we check nothing was left.
#
# This is the agent path only: no VM yet, so no isolation beyond namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/kata-agent ] || make -j"$(nproc)"

work=$(mktemp -d /tmp/kata-run-demo.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# The example's rootfs is made from Debian's static busybox.
examples/hello/make-bundle.sh "$work/bundle" >/dev/null

mkdir -p "$work/state"
unshare --mount --propagation private bash -c '
	set -e
	mount -t tmpfs -o mode=0700 tmpfs "$1/state"
	build/kata-agent --listen "unix:$1/agent.sock" --state-dir "$1/state" \
		--cgroup-prefix "kata-run-demo-$$" --log-file "$1/agent.log" &
	agent=$!
	for _ in $(seq 200); do [ -S "$1/agent.sock" ] && break; sleep 0.01; done
	set +e
	build/kr-agent-ctl -s "$1/agent.sock" run --overlay "$1/bundle"
	status=$?
	build/kr-agent-ctl -s "$1/agent.sock" destroy >/dev/null
	wait "$agent"
	echo "demo: container exited with status $status"
	exit $status
' demo "$work"
