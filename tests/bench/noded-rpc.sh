#!/bin/sh
# Benchmark: the `version` RPC through the master's node RPC client
# (examples/noded-bench.rs), TLS with the client certificate, against our
# ganeti-noded and, when Debian's ganeti 3.0.2 is installed or installable
# with apt-get, against its Python ganeti-noded. Prints numbers and the
# ratios; asserts nothing.
#
#   calls/s, latency   sequential and with 4 clients, new connection per call
#                      (as a 2.5.2 master) and kept-alive connections
#                      (Debian's noded closes after every call, so there both
#                      modes use a new connection per call)
#   VmLck/VmRSS        of the server before and after 1000 calls
#
# Targets (issue 3): >= 10x Debian's calls/s with new connections, >= 50x
# with keep-alive, <= 1/4 of its locked memory. Both daemons run as in
# production: TLS, mlock on, default worker pool / max clients.
#
# Usage: tests/bench/noded-rpc.sh [CALLS [DEBIAN_CALLS]]
#   defaults 2000 and 200 calls per measurement; NO_INSTALL=1 skips apt-get;
#   NODED=/path/to/ganeti-noded benchmarks another build of our daemon.
set -eu
cd "$(dirname "$0")/../.."
calls=${1:-2000}
deb_calls=${2:-200}

cargo build --release --quiet
cargo build --release --quiet --example noded-bench
noded=${NODED:-$PWD/target/release/ganeti-noded}
bench=$PWD/target/release/examples/noded-bench
work=$(mktemp -d /tmp/ganeti-rpc-bench.XXXXXX)
ours_pid=""
deb_pid=""

stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	i=0
	while [ -d "/proc/$1" ] && [ "$i" -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	if [ -d "/proc/$1" ]; then kill -KILL "$1" 2>/dev/null || true; fi
}

cleanup() {
	stop_pid "$ours_pid"
	stop_pid "$deb_pid"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A fresh self-signed cluster certificate, key and certificate in one file.
mkcert() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
		-subj /CN=ganeti.example.com -keyout "$work/key" -out "$work/crt" 2>/dev/null
	cat "$work/key" "$work/crt" >"$1"
	chmod 400 "$1"
	rm -f "$work/key" "$work/crt"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # HOST PORT
	python3 - "$1" "$2" <<'EOF'
import socket, sys, time
end = time.time() + 60
while time.time() < end:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.01)
sys.exit(1)
EOF
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- our ganeti-noded -------------------------------------------------------
ours=$work/ours
mkdir -p "$ours/var/lib/ganeti"
mkcert "$ours/var/lib/ganeti/server.pem"
port=$(free_port)
GANETI_ROOTDIR=$ours GANETI_HOSTNAME=node1.example.com "$noded" -b 127.0.0.1 -p "$port"
ours_pid=$(cat "$ours/var/run/ganeti/ganeti-noded.pid")
echo
echo "== ganeti-rs ganeti-noded $noded (TLS, mlock, default pool) =="
"$bench" --url "https://127.0.0.1:$port" --cert "$ours/var/lib/ganeti/server.pem" \
	--calls "$calls" --clients 4 --pid "$ours_pid" | tee "$work/ours.txt"
stop_pid "$ours_pid"
ours_pid=""

# --- Debian's Python ganeti-noded 3.0.2 ------------------------------------
debian_ready() {
	[ -x /usr/sbin/ganeti-noded ] &&
		dpkg-query -W -f='${Version}' ganeti 2>/dev/null | grep -q '^3\.0'
}

install_debian() {
	[ "${NO_INSTALL:-0}" = 1 ] && return 1
	command -v apt-get >/dev/null || return 1
	apt-cache policy ganeti 2>/dev/null | grep -q 'Candidate: 3\.0' || return 1
	# Keep the maintainer scripts from starting any service.
	policy=/usr/sbin/policy-rc.d
	made_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	echo "installing Debian's ganeti 3.0.2 (apt-get) ..."
	rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ganeti \
		>"$work/apt.log" 2>&1 || rc=$?
	if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
	[ "$rc" = 0 ] || { tail -5 "$work/apt.log" >&2; return 1; }
}

if ! debian_ready && ! { install_debian && debian_ready; }; then
	echo
	echo "Debian's ganeti 3.0.2 is not installed and cannot be: no comparison."
	exit 0
fi

# Ganeti's virtual-cluster mode keeps the Python daemon out of the system
# directories: every path is under GANETI_ROOTDIR, whose last component must
# be the node name. Client certificates are checked against the root's
# server.pem (no ssconf_master_candidates_certs: bootstrap mode).
name=node2.example.com
deb=$work/deb/$name
mkdir -p "$deb/var/lib/ganeti/queue" "$deb/var/run/ganeti" "$deb/var/log/ganeti"
mkcert "$deb/var/lib/ganeti/server.pem"
deb_port=$(free_port)
pem=$deb/var/lib/ganeti/server.pem
(
	cd /
	GANETI_ROOTDIR=$deb GANETI_HOSTNAME=$name exec setsid /usr/sbin/ganeti-noded -f \
		--syslog=no -b 127.0.0.2 -p "$deb_port" -K "$pem" -C "$pem" \
		>"$work/deb.out" 2>&1 </dev/null
) &
deb_pid=$!
if ! wait_port 127.0.0.2 "$deb_port"; then
	echo "Debian's ganeti-noded did not start:" >&2
	cat "$work/deb.out" >&2
	exit 1
fi
echo
echo "== Debian ganeti-noded $(dpkg-query -W -f='${Version}' ganeti) (Python; TLS, mlock, default) =="
"$bench" --url "https://127.0.0.2:$deb_port" --cert "$pem" \
	--calls "$deb_calls" --clients 4 --pid "$deb_pid" | tee "$work/deb.txt"
stop_pid "$deb_pid"
deb_pid=""

# --- ratios -----------------------------------------------------------------
echo
echo "== ganeti-rs / Debian 3.0.2 =="
rate() { # FILE MODE CLIENTS
	awk -v m="$2" -v c="$3" '$1 == m && $2 == c { print $4 }' "$1"
}
lck_after() {
	sed -n 's/^memory pid .*after [0-9]* calls VmLck \([0-9]*\) kB.*/\1/p' "$1"
}
for mode in new-conn keep-alive; do
	case $mode in new-conn) target=10 ;; *) target=50 ;; esac
	for clients in 1 4; do
		a=$(rate "$work/ours.txt" "$mode" "$clients")
		b=$(rate "$work/deb.txt" "$mode" "$clients")
		awk -v m="$mode" -v c="$clients" -v a="$a" -v b="$b" -v t="$target" 'BEGIN {
			r = a / b
			printf "calls/s %-10s %d client(s): %9.1f / %6.1f = %7.1fx  (target >= %dx: %s)\n",
				m, c, a, b, r, t, (r >= t ? "met" : "NOT met")
		}'
	done
done
a=$(lck_after "$work/ours.txt")
b=$(lck_after "$work/deb.txt")
awk -v a="$a" -v b="$b" 'BEGIN {
	r = a / b
	printf "VmLck after 1000 calls: %d kB / %d kB = %.2f  (target <= 0.25: %s)\n",
		a, b, r, (r <= 0.25 ? "met" : "NOT met")
}'
