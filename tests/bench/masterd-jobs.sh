#!/bin/sh
# Benchmark: OP_TEST_DELAY jobs (0.001 s, on the master) through LUXI with
# examples/masterd-bench.rs, against our ganeti-masterd (a throw-away
# one-node cluster made by tests/demo-cluster.sh in a temporary root) and,
# when Debian's Ganeti 3.0.2 is installed and its lab cluster can be
# started, against its luxid in the same run. Prints numbers and ratios;
# asserts nothing.
#
#   many        JOBS jobs submitted at once (SubmitManyJobs), time until all
#               finished (QueryJobs polling): jobs/s
#   sequential  ROUNDS times submit one job and wait for it
#               (WaitForJobChange, as gnt-debug does): latency p50/p90
#   durable     every acknowledged job's file is in the queue directory
#               when the submission is answered
#
# Targets (issue 4): >= 100x 3.0.2's jobs/s, submit-to-done under 1/100 of
# its latency, every job durable on disk.
#
# Usage: tests/bench/masterd-jobs.sh [JOBS [ROUNDS [JOBS3 [ROUNDS3]]]]
#   defaults 1000 100 for ours, 200 20 for 3.0.2 (about 4.7 jobs/s there:
#   1000 jobs would take minutes); LAB (default ../shared/lab/ganeti-3.0)
#   is the lab folder with cluster.sh, copied to /var/tmp/ganeti-3.0-lab;
#   NO_GANETI3=1 skips 3.0.2. Run as root.
set -eu
cd "$(dirname "$0")/../.."
jobs=${1:-1000}
rounds=${2:-100}
jobs3=${3:-200}
rounds3=${4:-20}
lab=${LAB:-$PWD/../shared/lab/ganeti-3.0}
labcopy=/var/tmp/ganeti-3.0-lab

cargo build --release --quiet
cargo build --release --quiet --example masterd-bench
bench=$PWD/target/release/examples/masterd-bench
root=$(mktemp -d /tmp/ganeti-bench-cluster.XXXXXX)
rmdir "$root"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp /tmp/ganeti-bench-out.XXXXXX)
stop_ours() {
	ROOT=$root PORT=$port BIN=$PWD/target/release tests/demo-cluster.sh stop >/dev/null 2>&1 || true
	rm -f "$out"
}
trap stop_ours EXIT

echo "== ganeti-rs masterd (one-node cluster in $root, release build)"
ROOT=$root PORT=$port BIN=$PWD/target/release tests/demo-cluster.sh >"$out" 2>&1 || {
	cat "$out"
	exit 1
}
pid=$(cat "$root/var/run/ganeti/ganeti-masterd.pid")
"$bench" --socket "$root/var/run/ganeti/socket/ganeti-master" --jobs "$jobs" \
	--rounds "$rounds" --queue-dir "$root/var/lib/ganeti/queue" --pid "$pid" | tee "$out"
ours=$(grep '^RESULT' "$out")
stop_ours
trap - EXIT

theirs=""
if [ -n "${NO_GANETI3:-}" ]; then
	echo "== Ganeti 3.0.2: skipped (NO_GANETI3 set)"
elif [ ! -d /usr/share/ganeti/3.0 ] || [ ! -x "$lab/cluster.sh" ]; then
	echo "== Ganeti 3.0.2: skipped (Debian's ganeti 3.0.2 or the lab folder $lab is missing)"
elif [ -e /var/lib/ganeti/config.data ]; then
	echo "== Ganeti 3.0.2: skipped (/var/lib/ganeti/config.data exists: a cluster is in use)"
else
	rm -rf "$labcopy"
	cp -r "$lab" "$labcopy"
	chmod -R u+w "$labcopy"
	trap '"$labcopy/cluster.sh" destroy >/dev/null 2>&1 || true' EXIT
	echo "== Ganeti 3.0.2 luxid (lab cluster, $labcopy/cluster.sh)"
	if "$labcopy/cluster.sh" init >"$labcopy/init.log" 2>&1; then
		pid3=$(cat /var/run/ganeti/ganeti-luxid.pid)
		out3=$labcopy/bench.out
		"$bench" --luxi3 --jobs "$jobs3" --rounds "$rounds3" \
			--queue-dir /var/lib/ganeti/queue --pid "$pid3" | tee "$out3"
		theirs=$(grep '^RESULT' "$out3" || true)
	else
		echo "could not start the 3.0.2 cluster:"
		tail -20 "$labcopy/init.log"
	fi
	"$labcopy/cluster.sh" destroy >/dev/null 2>&1 || true
	trap - EXIT
fi

value() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
if [ -n "$theirs" ]; then
	echo "== ratios (ours against 3.0.2)"
	awk -v a="$(value "$ours" jobs_per_s)" -v b="$(value "$theirs" jobs_per_s)" \
		-v c="$(value "$ours" p50_ms)" -v d="$(value "$theirs" p50_ms)" 'BEGIN {
		r = a / b; l = d / c
		printf "jobs/s: %.1f vs %.2f = %.0fx (target >= 100x: %s)\n", a, b, r, r >= 100 ? "met" : "NOT met"
		printf "submit-to-done p50: %.2f ms vs %.1f ms = 1/%.0f (target < 1/100: %s)\n", c, d, l, l > 100 ? "met" : "NOT met"
	}'
	echo "durable (ours): many $(value "$ours" many_durable), sequential $(value "$ours" seq_durable)"
	echo "durable (3.0.2): many $(value "$theirs" many_durable), sequential $(value "$theirs" seq_durable)"
else
	echo "durable (ours): many $(value "$ours" many_durable), sequential $(value "$ours" seq_durable)"
fi
