#!/bin/bash
# Benchmark (not a test): container create + start + wait + delete of
# /bin/true on one busybox bundle, under crun, runc and the kata-run agent
# on the host (`kr-agent-ctl run`), interleaved round-robin so drift hits
# every runtime alike.  Prints median and p90 per runtime, the ratios
# agent/crun and agent/runc from this same run, and the goal check
# (agent <= 1.0x crun and <= 0.5x runc) as PASS/MISS, for information.
#
#   bench/agent_vs_oci.sh            BENCH_N iterations (default 50)
#   BENCH_N=200 bench/agent_vs_oci.sh
#
# cgroups: crun 1.8 refuses a v1/v2 hybrid host ("cgroups in hybrid mode
# not supported") even with --cgroup-manager=disabled.  So the benchmark
# runs in a private mount namespace where /sys/fs/cgroup/unified is
# unmounted: every runtime sees the same pure cgroup v1 host and creates
# real v1 cgroups with its cgroupfs manager (the bundle keeps runc spec's
# linux.resources).  Turning cgroups off for crun alone would flatter it,
# since runc cannot turn them off.  The setting used is printed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
N=${BENCH_N:-50}
WARMUP=${BENCH_WARMUP:-3}
CRUN=${CRUN:-/usr/bin/crun}

# ---- enter a private mount namespace with a v1-only cgroup view -------------
if [[ -z ${KR_BENCH_INNER:-} ]]; then
	if [[ $(id -u) != 0 ]]; then
		echo "agent_vs_oci: needs root" >&2
		exit 1
	fi
	KR_BENCH_INNER=1 exec unshare -m --propagation private -- \
		"$BASH" "$0" "$@"
fi
cg_setting="host cgroup layout unchanged"
if [[ $(stat -f -c %T /sys/fs/cgroup) != cgroup2fs ]] &&
	[[ $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]]; then
	umount /sys/fs/cgroup/unified
	cg_setting="hybrid host: /sys/fs/cgroup/unified unmounted in a private mount namespace, so all runtimes use cgroup v1 (cgroupfs)"
fi

# shellcheck source=tests/lib/bundle.sh
. "$root/tests/lib/bundle.sh"
# shellcheck source=tests/lib/diff.sh
. "$root/tests/lib/diff.sh"
diff_init
BUNDLE=$DIFF_TMP/bundle
make_bundle "$BUNDLE" -- /bin/true

# ---- runtimes ------------------------------------------------------------------
run_crun() {
	"$CRUN" --cgroup-manager=cgroupfs --root "$DIFF_TMP/crun-root" run \
		--bundle "$BUNDLE" "$1"
}
run_runc_true() {
	"$RUNC" --root "$RUNC_ROOT" run --bundle "$BUNDLE" "$1"
}
run_agent_true() {
	"$AGENT_CTL" -s "$AGENT_SOCK" run --id "$1" "$BUNDLE"
}

runtimes=(crun runc)
declare -A cmd=([crun]=run_crun [runc]=run_runc_true [agent]=run_agent_true)
agent_note=
if [[ ! -x $AGENT_BIN || ! -x $AGENT_CTL ]]; then
	agent_note="agent skipped: $AGENT_BIN or $AGENT_CTL is not built"
else
	AGENT_LOG_LEVEL=${AGENT_LOG_LEVEL:-info}
	# shellcheck disable=SC2119 # no extra agent arguments
	if start_agent; then
		runtimes+=(agent)
	else
		agent_note="agent skipped: it did not start (log above)"
	fi
fi

# One timed run in microseconds; a failure ends the benchmark with its
# stderr, since a failing runtime would time its error path.
time_one() {
	local rt=$1 id=$2 t0 t1
	t0=${EPOCHREALTIME//[^0-9]/}
	if ! "${cmd[$rt]}" "$id" </dev/null >/dev/null 2>"$DIFF_TMP/err"; then
		echo "agent_vs_oci: $rt failed on $id:" >&2
		cat "$DIFF_TMP/err" >&2
		exit 1
	fi
	t1=${EPOCHREALTIME//[^0-9]/}
	echo $((t1 - t0))
}

echo "# agent_vs_oci: create+start+wait+delete of /bin/true, busybox bundle"
echo "# kernel $(uname -r); $("$CRUN" --version | head -n1); $("$RUNC" --version | head -n1)"
echo "# cgroups: $cg_setting"
echo "# crun: --cgroup-manager=cgroupfs; runc: default (cgroupfs); same bundle"
[[ -n $agent_note ]] && echo "# $agent_note"
echo "# $N iterations, round-robin with rotating order, $WARMUP warm-up rounds"

declare -A samples=()
k=${#runtimes[@]}
for ((i = -WARMUP; i < N; i++)); do
	for ((j = 0; j < k; j++)); do
		rt=${runtimes[(i + WARMUP + j) % k]}
		us=$(time_one "$rt" "b$$-$rt-$((i + WARMUP))")
		((i < 0)) || samples[$rt]+="$us "
	done
done

# stats RUNTIME: prints "MEDIAN_MS P90_MS" (p90 by nearest rank).
stats() {
	tr ' ' '\n' <<<"${samples[$1]}" | grep . | sort -n | awk '
		{ v[NR] = $1 }
		END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.9 * NR); if (r < 0.9 * NR) r++
			printf "%.2f %.2f\n", m / 1000, v[r] / 1000
		}'
}

declare -A med=() p90=()
printf '%-6s %10s %10s\n' runtime median_ms p90_ms
for rt in "${runtimes[@]}"; do
	read -r "med[$rt]" "p90[$rt]" < <(stats "$rt")
	printf '%-6s %10s %10s\n' "$rt" "${med[$rt]}" "${p90[$rt]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "runc/crun median ratio: $(ratio "${med[runc]}" "${med[crun]}")"
if [[ -n ${med[agent]:-} ]]; then
	rc=$(ratio "${med[agent]}" "${med[crun]}")
	rr=$(ratio "${med[agent]}" "${med[runc]}")
	verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r <= g) ? "PASS" : "MISS" }'; }
	echo "agent/crun median ratio: $rc (goal <= 1.0: $(verdict "$rc" 1.0))"
	echo "agent/runc median ratio: $rr (goal <= 0.5: $(verdict "$rr" 0.5))"
	echo "agent/crun p90 ratio: $(ratio "${p90[agent]}" "${p90[crun]}")"
	echo "agent/runc p90 ratio: $(ratio "${p90[agent]}" "${p90[runc]}")"
	if ! stop_agent >"$DIFF_TMP/leftovers"; then
		echo "# the agent left things behind:"
		cat "$DIFF_TMP/leftovers"
	fi
else
	echo "agent/crun, agent/runc: n/a (${agent_note#agent })"
fi
