#!/usr/bin/env bash
# Demo: real traffic switched by vswitchd between three network namespaces, then the flow
# language showcase: the flows of seed 000 (OpenDaylight's distributed router on compute node
# host5) loaded verbatim and packets traced through them.
#
# Needs root and the packages `.ci/run` installs (iproute2, ethtool, iputils-ping, python3).
# Everything it creates is private and removed on exit, even on failure: the daemon runs on
# its own socket and database in a temp dir and is stopped by PID; namespaces and links carry
# a per-run prefix (sw<pid%1000>t<n>-, the lab naming scheme, so `make lab-clean` finds them
# if this script is killed before its trap runs).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
FLOWS=integration/tests/data/seed000_host5_flows.txt

if [ "$(id -u)" != 0 ]; then
  echo "make demo needs root (network namespaces, veth pairs, XDP)" >&2
  exit 1
fi

# The temp dir names its owner (this shell) so `make lab-clean` can tell a stale daemon.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/swtest-demo-$$-XXXXXX")
SOCK=$WORK/vswitchd.sock
DB=$WORK/vswitchd.db
NSES=()
LINKS=()

cleanup() {
  set +e
  if [ -n "${PID:-}" ]; then
    kill -TERM "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  for link in "${LINKS[@]}"; do ip link del dev "$link" 2>/dev/null; done
  for ns in "${NSES[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# A lab prefix no namespace or link uses yet (tests count up from 0; the demo from 900).
N=900
while ip netns list | grep -q "^sw$(($$ % 1000))t$N-" ||
  ip -o link show | grep -q ": sw$(($$ % 1000))t$N-"; do N=$((N + 1)); done
P=sw$(($$ % 1000))t$N

in_ns() { local ns=$P-$1; shift; ip netns exec "$ns" "$@"; }

# host NAME IP MAC: a namespace with eth0 (IP/24, MAC), joined by a veth to root end $P-pN.
host() {
  local ns=$P-$1 port=$P-p${1#h}
  ip netns add "$ns"
  NSES+=("$ns")
  # No IPv6 chatter (router solicitations, MLD) in the counters; lo up for local sockets.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
  ip link add "$port" type veth peer name eth0 netns "$ns"
  LINKS+=("$port")
  echo 1 >"/proc/sys/net/ipv6/conf/$port/disable_ipv6"
  ip -n "$ns" link set dev eth0 address "$3"
  ip -n "$ns" addr add "$2/24" dev eth0
  # AF_XDP sees no checksum-offload flag: the namespace must send complete checksums and
  # frames that fit one umem chunk (see shared notes on AF_XDP over veth).
  ip netns exec "$ns" ethtool -K eth0 tx off tso off gso off gro off >/dev/null
  ip -n "$ns" link set dev eth0 up
  ip link set dev "$port" up
}

echo "# Lab: three hosts (namespaces $P-h1..h3), each on a veth whose root end is a switch port."
host h1 10.0.0.1 02:00:00:00:00:01
host h2 10.0.0.2 02:00:00:00:00:02
host h3 10.0.0.3 02:00:00:00:00:03

"$BIN/vswitchd" --socket "$SOCK" --db "$DB" --workers 1 --idle sleep --log-level warn &
PID=$!
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
sw() { echo "+ swctl $*" >&2; "$BIN/swctl" --socket "$SOCK" "$@"; }

sw add-br br0
for i in 1 2 3; do sw add-port br0 "$P-p$i" --ofport "$i"; done
sw add-flow br0 "priority=0 actions=normal"
echo
sw show
echo
echo "# Ping through the switch (MAC learning: flow 'actions=normal')."
in_ns h1 ping -n -c 3 -i 0.2 -W 1 10.0.0.2
in_ns h3 ping -n -c 3 -i 0.2 -W 1 10.0.0.1
echo

echo "# 10 MB over TCP from h1 to h2, checked with SHA-256 on both ends."
SERVER='
import socket, sys, hashlib
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.0.2", 5001)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(20); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print("h2 received", n, "bytes, sha256", h.hexdigest()); c.close()'
CLIENT='
import socket, hashlib, os, time
data = os.urandom(10 << 20); deadline = time.time() + 10
while True:
    try: s = socket.create_connection(("10.0.0.2", 5001), timeout=2); break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.1)
s.settimeout(20); t = time.time(); s.sendall(data); s.shutdown(socket.SHUT_WR); s.recv(1)
print("h1 sent    ", len(data), "bytes, sha256", hashlib.sha256(data).hexdigest(),
      "(%.1f Mbit/s)" % (len(data) * 8 / (time.time() - t) / 1e6))'
timeout 30 ip netns exec "$P-h2" python3 -c "$SERVER" >"$WORK/server.out" &
SERVER_PID=$!
timeout 30 ip netns exec "$P-h1" python3 -c "$CLIENT"
wait "$SERVER_PID"
cat "$WORK/server.out"
echo

echo "# An explicit flow on top: drop IP to h3. h1 -> h3 now fails (2 requests, 0 replies)."
sw add-flow br0 "priority=100,ip,nw_dst=10.0.0.3 actions=drop"
in_ns h1 ping -n -c 2 -i 0.2 -W 1 10.0.0.3 || true
sw del-flows br0 --strict "priority=100,ip,nw_dst=10.0.0.3"
echo
sw dump-flows br0
echo
sw dump-ports br0
echo
sw fdb-show br0
echo

echo "# The flow language: host5's flows from seed 000, pasted verbatim from"
echo "# 'ovs-ofctl -O OpenFlow13 dump-flows br-int', on a second bridge:"
sw add-br br-int
cat "$FLOWS"
sw add-flows br-int "$FLOWS"
echo
sw dump-flows br-int
echo
echo "# The seed lists only the flows that mention the VM, so each trace starts (table=N) at the"
echo "# table that handles it; a trace without table= starts at table 0 like a real packet."
echo "# 1. ARP request for the VM's address arriving on the tunnel: table 20 answers it."
sw trace br-int "table=20,in_port=3,tun_id=0x43e,arp,arp_op=1,dl_src=fa:16:3e:91:5f:a0,dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=88.88.88.1,arp_tpa=88.88.88.4,arp_sha=fa:16:3e:91:5f:a0"
echo
echo "# 2. Client SYN to the floating IP from the external port 5: table 30 DNATs it."
sw trace br-int "table=30,in_port=5,tcp,nw_src=192.168.111.210,nw_dst=192.168.111.223,tp_src=17350,tp_dst=22"
echo
echo "# 3. The VM's SYN-ACK routed out through table 100: SNAT to the floating IP, TTL-1, output 5."
sw trace br-int "table=100,in_port=7,tun_id=0x43e,tcp,dl_src=fa:16:3e:4b:eb:3c,dl_dst=fa:16:3e:91:5f:a0,nw_src=88.88.88.4,nw_dst=192.168.111.210,nw_ttl=64,tp_src=22,tp_dst=17350,tcp_flags=+syn+ack"
echo
sw show
