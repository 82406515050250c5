#!/bin/sh
# Benchmark: an idle ganeti-noded with the default worker pool, with TLS and
# mlock as in production. Prints numbers; asserts nothing.
#
#   start_ms   time from running the starter until it exits 0, which it does
#              only once the daemon accepts connections (N runs)
#   VmLck/RSS  locked and resident memory of the idle daemon
#
# Targets (issue 2): VmLck <= 16 MB (Ganeti's Python noded: ~59 MB),
# start to serving < 20 ms. Usage: tests/bench/noded-idle.sh [RUNS]
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-20}

cargo build --release --quiet
bin=$PWD/target/release/ganeti-noded
root=$(mktemp -d /tmp/ganeti-bench.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/ganeti"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench.example.com \
	-keyout "$root/k" -out "$root/c" 2>/dev/null
cat "$root/k" "$root/c" >"$root/var/lib/ganeti/server.pem"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pidfile=$root/var/run/ganeti/ganeti-noded.pid

stop() {
	kill -TERM "$(cat "$pidfile")"
	while [ -f "$pidfile" ]; do sleep 0.01; done
}

times=""
i=0
while [ "$i" -lt "$runs" ]; do
	t0=$(date +%s%N)
	GANETI_ROOTDIR=$root "$bin" -b 127.0.0.1 -p "$port"
	t1=$(date +%s%N)
	times="$times $(((t1 - t0) / 1000))"
	i=$((i + 1))
	[ "$i" -lt "$runs" ] && stop
done
pid=$(cat "$pidfile")
sleep 0.2
echo "ganeti-noded idle, TLS, mlock, default pool ($runs starts)"
echo "$times" | tr ' ' '\n' | grep . | sort -n | awk '
	{ v[NR] = $1; s += $1 }
	END { printf "start_to_serving_ms  min %.2f  median %.2f  mean %.2f  max %.2f\n",
		v[1] / 1000, v[int((NR + 1) / 2)] / 1000, s / NR / 1000, v[NR] / 1000 }'
grep -E '^(VmLck|VmRSS|Threads)' "/proc/$pid/status" | awk '
	$1 == "Threads:" { printf "threads              %d\n", $2; next }
	{ printf "%-20s %.1f MB\n", $1, $2 / 1024 }'
stop
