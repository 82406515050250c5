#!/bin/sh
# Starts a throw-away ganeti-noded on 127.0.0.1 in a temporary root with a
# fresh cluster certificate, and calls its `version` procedure over HTTPS
# with that certificate, as a master would.
#
#   tests/demo-node.sh            build, start, call; prints how to stop
#   tests/demo-node.sh stop ROOT  stop the daemon of ROOT and remove ROOT
#
# PORT (default 1811) picks the TCP port. Run as root (the node daemon
# refuses other users, as Ganeti's does).
set -eu
cd "$(dirname "$0")/.."

if [ "${1:-}" = stop ]; then
	root=${2:?usage: $0 stop ROOT}
	pidfile="$root/var/run/ganeti/ganeti-noded.pid"
	if [ -f "$pidfile" ]; then
		kill -TERM "$(cat "$pidfile")"
		while [ -f "$pidfile" ]; do sleep 0.1; done
	fi
	rm -rf "$root"
	echo "stopped and removed $root"
	exit 0
fi

port=${PORT:-1811}
cargo build --release --quiet
root=$(mktemp -d /tmp/ganeti-node.XXXXXX)
mkdir -p "$root/var/lib/ganeti"
pem="$root/var/lib/ganeti/server.pem"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=ganeti.example.com \
	-keyout "$root/key.pem" -out "$root/cert.pem" 2>/dev/null
cat "$root/key.pem" "$root/cert.pem" >"$pem"
rm -f "$root/key.pem" "$root/cert.pem"

GANETI_ROOTDIR=$root GANETI_HOSTNAME=node1.example.com \
	target/release/ganeti-noded -b 127.0.0.1 -p "$port"
echo "ganeti-noded is serving on 127.0.0.1:$port (root $root)"

# call PROCEDURE JSON-ARGS: an RPC as a master makes it, with the certificate.
call() {
	echo "PUT /$1 $2 ->"
	curl -sS --cacert "$pem" --cert "$pem" \
		--resolve "ganeti.example.com:$port:127.0.0.1" \
		-X PUT --data-binary "$2" "https://ganeti.example.com:$port/$1"
}
call version '[]'
call node_info '[null, "fake"]'
call write_ssconf_files '[{"cluster_name": "demo.example.com"}]'
echo "  -> $root/var/lib/ganeti/ssconf_cluster_name: $(cat "$root/var/lib/ganeti/ssconf_cluster_name")"
call jobqueue_update '["/var/lib/ganeti/queue/../../../../etc/passwd", [0, "x"]]'
echo
echo "without the cluster certificate ->"
curl -sS --cacert "$pem" --resolve "ganeti.example.com:$port:127.0.0.1" \
	-X PUT --data-binary '[]' "https://ganeti.example.com:$port/version" 2>&1 || true

echo "log: $root/var/log/ganeti/node-daemon.log"
echo "stop it with: $0 stop $root"
