# Shared by the benchmarks: statistics over samples.

# stats "V1 V2 ..." DIVISOR: prints "MEDIAN P90 COUNT" (p90 by nearest rank).
stats() {
	tr ' ' '\n' <<<"$1" | grep . | sort -n | awk -v d="$2" '
		{ v[NR] = $1 }
		END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.9 * NR); if (r < 0.9 * NR) r++
			printf "%.1f %.1f %d\n", m / d, v[r] / d, NR
		}'
}
# ratio A B: A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
