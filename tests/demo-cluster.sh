#!/bin/sh
# Sets up and starts a throw-away one-node Ganeti cluster on loopback, in a
# temporary root (GANETI_ROOTDIR), with the fake hypervisor and file storage:
# `gnt-cluster init` writes the configuration and certificates and starts
# ganeti-noded and ganeti-masterd; then a job runs (`gnt-debug delay`) and
# the job queue is shown.
#
#   tests/demo-cluster.sh         build, create, start, run a job
#   tests/demo-cluster.sh stop    destroy the cluster, stop its daemons,
#                                 remove the root
#
# ROOT (default /tmp/ganeti-demo-cluster) is the root, PORT (default 1811)
# the node daemon's port on 127.0.0.1; the node is node1.demo.test
# (127.0.0.1), the cluster cluster.demo.test (127.0.0.2), both in the
# root's /etc/hosts. BIN (default target/release, built here) holds the
# binaries. Run as root (the daemons refuse other users, as Ganeti's do).
set -eu
cd "$(dirname "$0")/.."

root=${ROOT:-/tmp/ganeti-demo-cluster}
port=${PORT:-1811}
# The port of a running demo cluster is kept in its root.
if [ -z "${PORT:-}" ] && [ -s "$root/demo-port" ]; then
	port=$(cat "$root/demo-port")
fi
bin=${BIN:-$PWD/target/release}
node=node1.demo.test
cluster=cluster.demo.test

export GANETI_ROOTDIR="$root" GANETI_HOSTNAME="$node" GANETI_NODED_PORT="$port"
unset GANETI_SBINDIR EXTRA_NODED_ARGS EXTRA_MASTERD_ARGS

# stop_pid FILE: SIGTERM to the daemon of a pid file, wait (at most 10 s)
# for it to go, then SIGKILL.
stop_pid() {
	[ -s "$1" ] || return 0
	pid=$(cat "$1")
	case "$pid" in '' | *[!0-9]*) return 0 ;; esac
	kill -TERM "$pid" 2>/dev/null || return 0
	i=0
	while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$pid" 2>/dev/null || true
}

if [ "${1:-}" = stop ]; then
	if [ ! -d "$root" ]; then
		echo "no demo cluster in $root"
		exit 0
	fi
	if [ -e "$root/var/lib/ganeti/config.data" ]; then
		"$bin/gnt-cluster" destroy --yes-do-it || echo "gnt-cluster destroy failed; stopping the daemons"
	fi
	stop_pid "$root/var/run/ganeti/ganeti-masterd.pid"
	stop_pid "$root/var/run/ganeti/ganeti-noded.pid"
	rm -rf "$root"
	echo "stopped the demo cluster and removed $root"
	exit 0
fi

if [ -e "$root" ]; then
	echo "$root exists: a demo cluster may be running; stop it first: $0 stop" >&2
	exit 1
fi
if [ -z "${BIN:-}" ]; then
	cargo build --release --quiet
fi

mkdir -p "$root/etc/ssh" "$root/etc/default"
echo "$port" >"$root/demo-port"
printf '127.0.0.1 localhost\n127.0.0.1 %s node1\n127.0.0.2 %s cluster\n' \
	"$node" "$cluster" >"$root/etc/hosts"
if [ -r /etc/ssh/ssh_host_rsa_key.pub ]; then
	cp /etc/ssh/ssh_host_rsa_key.pub "$root/etc/ssh/"
else
	echo "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCdemo root@$node" >"$root/etc/ssh/ssh_host_rsa_key.pub"
fi
printf 'NODED_ARGS="-b 127.0.0.1 -p %s"\n' "$port" >"$root/etc/default/ganeti"

run() {
	echo "# $*"
	"$@"
}

run "$bin/gnt-cluster" init --no-lvm-storage --no-drbd-storage --no-ssh-init \
	--enabled-hypervisors=fake --master-netdev=lo "$cluster"
run "$bin/gnt-cluster" getmaster
run "$bin/gnt-debug" delay --repeat 2 0.2
run "$bin/gnt-job" list
run "$bin/gnt-cluster" queue info

stop="$0 stop"
if [ -n "${ROOT:-}" ] || [ -n "${BIN:-}" ]; then
	stop="ROOT=$root BIN=$bin $0 stop"
fi
cat <<EOF

The cluster $cluster runs in $root:
  ganeti-noded (pid $(cat "$root/var/run/ganeti/ganeti-noded.pid")) on 127.0.0.1:$port, log $root/var/log/ganeti/node-daemon.log
  ganeti-masterd (pid $(cat "$root/var/run/ganeti/ganeti-masterd.pid")), log $root/var/log/ganeti/master-daemon.log
Use it with:
  export GANETI_ROOTDIR=$root GANETI_HOSTNAME=$node GANETI_NODED_PORT=$port
  $bin/gnt-cluster info; $bin/gnt-debug delay 1; $bin/gnt-job info 1
Stop it and remove everything with: $stop
EOF
