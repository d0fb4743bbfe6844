#!/usr/bin/env bash
# Demo: the switch daemon programmed with the flows of seed 000 (OpenDaylight's distributed
# router on compute node host5), then packets traced through them.
# Runs vswitchd on a private socket and stops it (by PID) on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
WORK=$(mktemp -d /tmp/vswitch-demo.XXXXXX)
SOCK=$WORK/vswitchd.sock
FLOWS=integration/tests/data/seed000_host5_flows.txt

cleanup() {
  if [ -n "${PID:-}" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/vswitchd" --socket "$SOCK" --db "$WORK/conf.db" --log-level warn &
PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
sw() { echo "+ swctl $*" >&2; "$BIN/swctl" --socket "$SOCK" "$@"; }

sw add-br br-int
echo "# host5's flows, pasted verbatim from 'ovs-ofctl -O OpenFlow13 dump-flows br-int':"
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
