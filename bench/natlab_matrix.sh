#!/usr/bin/env bash
# NAT traversal benchmark: the matrix of tests/natlab/test_matrix.sh with
# N attempts per pair (default 20), once with mailpunch's traversal and
# once as the baseline of plain simultaneous hole punching (PortPrediction
# no: no range detection, no spraying, no birthday probing), on the same
# lab in the same run; then the sequential-symmetric pairs again with a
# background load of 10 new flows a second on each NAT.  Prints per pair:
# success rate, median time from the start of punching to the path, and
# packets sent per success, for both, side by side.  Never asserts.
#
#   bench/natlab_matrix.sh [BUILD_DIR]      (default: _build/dev)
#   BENCH_ATTEMPTS=5 BENCH_TYPES="fullcone portsym-seq1" bench/natlab_matrix.sh
# Needs what the matrix needs (root, netns, Postfix, Dovecot, coturn).
# A full run (10 types, 20 attempts, both modes) takes a few hours: use
# BENCH_TYPES / BENCH_ATTEMPTS for a quick look.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/_build/dev}" && pwd)
attempts=${BENCH_ATTEMPTS:-20}
types=${BENCH_TYPES:-none fullcone restricted portrestricted addrsym portsym-seq1 portsym-seq2 portsym-random kernel-masq kernel-random}
out=$(mktemp -d /tmp/mp-natbench.XXXXXX)

run() { # NAME [ENV...]
	local name=$1
	shift
	echo "== $name" >&2
	(cd "$build" && env MATRIX_ALL=1 MATRIX_RETRY=0 MATRIX_ATTEMPTS="$attempts" MATRIX_TYPES="$types" \
		MATRIX_TABLE="$out/$name.table" "$@" "$top/tests/natlab/test_matrix.sh" >"$out/$name.log" 2>&1)
}

run mailpunch
run plain MATRIX_PLAIN=1
seq_types=""
for t in $types; do case $t in portsym-seq*) seq_types="$seq_types $t" ;; esac; done
if [ -n "$seq_types" ]; then
	(types=$seq_types; run load MATRIX_CONSUME=10)
	(types=$seq_types; run load-plain MATRIX_CONSUME=10 MATRIX_PLAIN=1)
fi

# summary TABLE: "x y rate median_ms packets_per_success" per pair
summary() {
	awk 'NR > 1 && $3 != "" {
		k = $1 " " $2; n[k]++
		if ($3 == "yes") { ok[k]++; t[k] = t[k] " " $4; p[k] += $5 }
	}
	END {
		for (k in n) {
			m = "-"
			if (ok[k]) {
				c = split(t[k], a, " ")
				for (i = 2; i <= c; i++)     # insertion sort: mawk has no asort
					for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { x = a[j]; a[j] = a[j - 1]; a[j - 1] = x }
				m = a[int((c + 1) / 2)]
			}
			printf "%s %d/%d %s %s\n", k, ok[k], n[k], m, ok[k] ? int(p[k] / ok[k]) : "-"
		}
	}' "$1" | sort
}

compare() { # MODE BASELINE TITLE
	[ -f "$out/$1.table" ] || return
	echo
	echo "$3"
	printf '%-15s %-15s | %-9s %8s %8s | %-9s %8s %8s | %s\n' "alice (r1)" "bob (r2)" \
		"success" "median" "pkts" "plain" "median" "pkts" "speed-up"
	join -j 1 <(summary "$out/$1.table" | awk '{print $1"/"$2, $3, $4, $5}' | sort) \
		<(summary "$out/$2.table" | awk '{print $1"/"$2, $3, $4, $5}' | sort) |
		while read -r pair s1 m1 p1 s2 m2 p2; do
			ratio=-
			[ "$m1" != - ] && [ "$m2" != - ] && [ "$m1" -gt 0 ] && ratio=$(awk -v a="$m2" -v b="$m1" 'BEGIN { printf "%.2fx", a / b }')
			printf '%-15s %-15s | %-9s %8s %8s | %-9s %8s %8s | %s\n' "${pair%/*}" "${pair#*/}" \
				"$s1" "$m1" "$p1" "$s2" "$m2" "$p2" "$ratio"
		done
}

compare mailpunch plain "NAT traversal, $attempts attempts per pair: mailpunch vs plain hole punching (ms from punch start to path)"
compare load load-plain "Sequential symmetric NATs with 10 background flows/s on each NAT"
echo
echo "(raw tables and logs in $out)"
