#!/usr/bin/env bash
# bench/redis_milter.sh -- requests per second of mailpunch-milter inside a
# real Postfix with its table in Redis, against the shared-memory table,
# on the same machine.
#
#   bench/redis_milter.sh [BUILD_DIR]
#
# Starts a redis-server on a free loopback port (no persistence), then
# runs bench/postfix_milter.sh --quick twice: with the default shared-
# memory table and with BENCH_TABLE=redis://127.0.0.1:PORT/0?prefix=...
# (the ordinary-mail part is cut short: BENCH_MESSAGES defaults to 200
# here).  Prints each run's request rate and the ratio redis/shm; never
# asserts a speed.  Same needs as postfix_milter.sh plus redis-server.
# Exit 0 when measured, 1 when a run failed, 77 when something is missing.
set -uo pipefail

src=$(cd "$(dirname "$0")" && pwd)
build=${1:-$PWD}
command -v redis-server >/dev/null || { echo "bench: skipped: redis-server not installed" >&2; exit 77; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp -d /tmp/mpr.XXXXXX)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$out" >"$out/redis.log" 2>&1 &
redis=$!
trap 'kill "$redis" 2>/dev/null; wait "$redis" 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

export BENCH_MESSAGES=${BENCH_MESSAGES:-200}
rate() { sed -n 's/^   requests + milter *\([0-9.]*\) req\/s.*/\1/p' "$1"; }
"$src/postfix_milter.sh" --quick "$build" >"$out/shm.txt" 2>"$out/shm.err"
rc_shm=$?
BENCH_TABLE="redis://127.0.0.1:$port/0?prefix=mpb-$$" \
	"$src/postfix_milter.sh" --quick "$build" >"$out/redis.txt" 2>"$out/redis.err"
rc_redis=$?
[ "$rc_shm" = 77 ] || [ "$rc_redis" = 77 ] && { cat "$out/shm.err" >&2; exit 77; }
shm=$(rate "$out/shm.txt")
red=$(rate "$out/redis.txt")
grep -E '^  (machine|software)' "$out/shm.txt"
printf 'requests/s through Postfix + milter, shm table:   %s\n' "${shm:-failed}"
printf 'requests/s through Postfix + milter, redis table: %s\n' "${red:-failed}"
if [ -z "$shm" ] || [ -z "$red" ]; then
	tail -n 20 "$out/shm.txt" "$out/redis.txt" "$out/shm.err" "$out/redis.err" >&2
	exit 1
fi
awk -v a="$red" -v b="$shm" 'BEGIN { printf "ratio redis/shm: %.3f\n", a / b }'
