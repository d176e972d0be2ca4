# shellcheck shell=bash
# Minimal TAP for the standalone integration scripts (sourced):
#   ok STATUS NAME   counts STATUS 0 as passed, anything else as failed
#   skip_one REASON  one skipped check
#   finish           plan, the "N passed, N failed, N skipped" line, exit
n=0 pass=0 fail=0 skip=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		pass=$((pass + 1)); echo "ok $n - $2"
	else
		fail=$((fail + 1)); echo "not ok $n - $2"
	fi
}
skip_one() { n=$((n + 1)); skip=$((skip + 1)); echo "ok $n - # SKIP $1"; }
finish() {
	echo "1..$n"
	echo "$pass passed, $fail failed, $skip skipped"
	[ "$fail" = 0 ]
	exit
}
