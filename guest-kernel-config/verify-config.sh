#!/bin/sh
# verify-config.sh FRAGMENT DOTCONFIG
#
# Checks that every option in FRAGMENT came out as asked in DOTCONFIG (the
# .config that `make olddefconfig` produced):
#   CONFIG_X=v              -> DOTCONFIG must contain exactly CONFIG_X=v
#   # CONFIG_X is not set   -> DOTCONFIG must not enable CONFIG_X
# Prints one line per mismatch, naming the option, what was asked and what
# came out, and exits 1 if there is any; exits 0 and prints a count if all
# match.  Kconfig drops options whose dependencies are unmet without a word:
# this is the check that notices.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 FRAGMENT DOTCONFIG" >&2
	exit 2
fi
frag=$1
conf=$2
for f in "$frag" "$conf"; do
	if [ ! -r "$f" ]; then
		echo "verify-config: cannot read $f" >&2
		exit 2
	fi
done

awk -v conf="$conf" '
BEGIN {
	while ((getline line < conf) > 0) {
		if (line ~ /^CONFIG_[A-Za-z0-9_]+=/) {
			eq = index(line, "=")
			have[substr(line, 1, eq - 1)] = substr(line, eq + 1)
		}
	}
	close(conf)
	bad = 0; n = 0
}
/^CONFIG_[A-Za-z0-9_]+=/ {
	n++
	eq = index($0, "=")
	name = substr($0, 1, eq - 1); want = substr($0, eq + 1)
	sub(/[ \t]+$/, "", want)
	if (!(name in have)) {
		printf "verify-config: MISSING %s (wanted %s, not set: dependency unmet or unknown symbol)\n", name, want
		bad++
	} else if (have[name] != want) {
		printf "verify-config: WRONG   %s (wanted %s, got %s)\n", name, want, have[name]
		bad++
	}
	next
}
/^# CONFIG_[A-Za-z0-9_]+ is not set/ {
	n++
	name = $2
	if ((name in have) && have[name] != "n") {
		printf "verify-config: ENABLED %s (wanted not set, got %s)\n", name, have[name]
		bad++
	}
	next
}
END {
	if (bad) {
		printf "verify-config: %d of %d options not as requested\n", bad, n
		exit 1
	}
	printf "verify-config: all %d options as requested\n", n
}
' "$frag"
