#!/usr/bin/env bash
# End-to-end veth lab benchmark: generator namespace -> veth -> PEER (root namespace) -> veth ->
# sink namespace, 64-byte UDP frames, 1 / 100 / 10 000 flows, peers interleaved round by round.
# `--scenario nat`: the same lab with conntrack + SNAT in every peer (vswitchd ct(commit,nat),
# a Linux router namespace with nftables SNAT, the bare forwarder as the I/O ceiling): new
# connections per second, then packets of 10 000 existing connections.
# Methodology and how to read the output: bench/LAB.md. Run as root: `make bench-lab`,
# `make bench-lab-nat`.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: run.sh [options]
  --scenario S         forward (default): plain forwarding through a 3-table pipeline;
                       nat: conntrack + SNAT (bench/LAB.md, "NAT scenario")
  --quick              1-second measurements, 1 round (smoke test)
  --seconds N          seconds per measurement (default 5)
  --new-seconds N      nat: seconds of the new-connections measurement (default 2; --quick 1)
  --rounds N           rounds; every peer is measured once per round (default 3)
  --flows "A B .."     flow counts (default "1 100 10000"; nat: "10000")
  --peers "P .."       forward: among bridge afxdp ovs vswitchd (default: all four)
                       nat: among router afxdp vswitchd ovs (default: the first three)
  --benchlab PATH      the benchlab binary (default target/release/benchlab)
  --vswitchd PATH      vswitchd binary (default target/release/vswitchd)
  --swctl PATH         swctl binary (default target/release/swctl)
  --ovs-root DIR       where ovs-vswitchd / ovs-vsctl live if not in PATH
                       (default /var/tmp/benchlab-ovs/root, filled by bench/lab/get-ovs.sh)
  --gen-mode MODE      auto (live frames, AF_PACKET if unavailable) | live | packet
  --ctl-cpu N          CPU of the switches' non-PMD threads (default 0: vswitchd's control
                       threads, ovs-vswitchd's main/handler/revalidator threads and ovsdb);
                       their PMD runs on CPU 1 either way (--pmd-cpus 1 / pmd-cpu-mask=0x2).
                       1 puts everything on CPU 1, as before 2026-11-21 (bench/LAB.md)
  --results FILE       also keep the raw per-measurement lines (TSV) in FILE
  --logs DIR           keep the peers' logs (OVS, vswitchd, forwarder) in DIR
EOF
}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
SCENARIO=forward
MEAS_SECONDS=5
NEW_SECONDS=
ROUNDS=3
FLOWS=
PEERS=
BENCHLAB=$REPO/target/release/benchlab
VSWITCHD=$REPO/target/release/vswitchd
SWCTL=$REPO/target/release/swctl
OVS_ROOT=/var/tmp/benchlab-ovs/root
RESULTS_KEEP=
LOGS_KEEP=
GEN_MODE=auto
CTL_CPU=0
while [ $# -gt 0 ]; do
    case $1 in
    --scenario) SCENARIO=$2; shift ;;
    --quick) MEAS_SECONDS=1; ROUNDS=1; NEW_SECONDS=${NEW_SECONDS:-1} ;;
    --seconds) MEAS_SECONDS=$2; shift ;;
    --new-seconds) NEW_SECONDS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --flows) FLOWS=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    --benchlab) BENCHLAB=$2; shift ;;
    --vswitchd) VSWITCHD=$2; shift ;;
    --swctl) SWCTL=$2; shift ;;
    --ovs-root) OVS_ROOT=$2; shift ;;
    --results) RESULTS_KEEP=$2; shift ;;
    --logs) LOGS_KEEP=$2; shift ;;
    --gen-mode) GEN_MODE=$2; shift ;;
    --ctl-cpu) CTL_CPU=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

case $SCENARIO in
forward)
    FLOWS=${FLOWS:-1 100 10000}
    PEERS=${PEERS:-bridge afxdp ovs vswitchd}
    KNOWN_PEERS="bridge afxdp ovs vswitchd"
    ;;
nat)
    FLOWS=${FLOWS:-10000}
    PEERS=${PEERS:-router afxdp vswitchd}
    KNOWN_PEERS="router afxdp vswitchd ovs"
    NEW_SECONDS=${NEW_SECONDS:-2}
    ;;
*) die "unknown --scenario $SCENARIO (forward or nat)" ;;
esac
for p in $PEERS; do
    [[ " $KNOWN_PEERS " == *" $p "* ]] || die "peer $p is not part of the $SCENARIO scenario ($KNOWN_PEERS)"
done
for n in "$MEAS_SECONDS" "${NEW_SECONDS:-1}"; do
    [[ "$n" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "bad number of seconds $n"
done
[[ "$CTL_CPU" =~ ^[01]$ ]] || die "--ctl-cpu must be 0 or 1"
for f in $FLOWS; do
    if ! [[ "$f" =~ ^[0-9]+$ ]] || [ "$f" -lt 1 ] || [ "$f" -gt 60000 ]; then
        die "bad flow count $f (1..60000)"
    fi
done

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, XDP, AF_XDP)"
for c in ip ethtool taskset bridge awk; do
    command -v "$c" >/dev/null || die "missing command: $c (apt-get install iproute2 ethtool util-linux)"
done
[ -x "$BENCHLAB" ] || die "no benchlab binary at $BENCHLAB (cargo build --release -p benchlab)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs: generator on CPU 0, peer under test on CPU 1"
# This script and everything it starts run on CPU 0 with the generator, unless told otherwise
# (the peers are started with taskset -c 1): CPU 1 belongs to the peer under test. Besides CPU
# time, Unix-socket clients on CPU 1 (swctl, ovs-appctl, ovs-vsctl) allocate memory-cgroup-
# accounted socket buffers there, which marks CPU 1's skb slab pages so that every AF_XDP
# transmit skb the peer frees from them pays the memcg free hook (~10 ns per packet measured
# when vswitchd's control thread did it; bench/LAB.md, "CPU placement").
taskset -pc 0 $$ >/dev/null || die "taskset -pc 0 failed"
if [ "$SCENARIO" = nat ] && [[ " $PEERS " == *" router "* ]]; then
    for c in nft conntrack; do
        command -v "$c" >/dev/null || die "missing command: $c (bench/lab/get-nat-tools.sh installs nftables and conntrack)"
    done
fi
if [ "$SCENARIO" = nat ] && [[ " $PEERS " == *" vswitchd "* ]]; then
    command -v python3 >/dev/null || die "missing command: python3 (reads swctl's JSON)"
fi

# ---------------------------------------------------------------------------------------------
# Names unique to this run, so concurrent runs and leftovers never collide. Interface names
# stay under 15 characters: bl<pid%1000> + g0/g1/s0/s1/br.
P=bl$(($$ % 1000))
NS_GEN=$P-gen
NS_SINK=$P-sink
G0=${P}g0 # generator end (in NS_GEN)
G1=${P}g1 # peer's ingress port (root namespace)
S1=${P}s1 # peer's egress port (root namespace)
S0=${P}s0 # sink end (in NS_SINK)
BR=${P}br   # Linux bridge peer
NS_RTR=$P-rtr # Linux router peer (nat): G1 and S1 are moved into it and back
OVS_BR=${P}ob # OVS bridge (its internal port is a tap of that name in the root namespace)
VS_BR=${P}vb  # vswitchd bridge
SRC_IP=10.250.0.1
DST_IP=10.250.1.1
RTR_IN_IP=10.250.0.254 # nat: the router's address on the generator side
PUBLIC_IP=10.250.1.254 # nat: the router's address on the sink side, and the SNAT address
TMP=$(mktemp -d "/tmp/benchlab.$P.XXXXXX")
RESULTS=$TMP/results.tsv
declare -a PIDS=() # every background process we started, stopped by PID on exit
CURRENT_PEER=
CT_SAVED_MAX= # nat: the machine's nf_conntrack_max and buckets before we raised them
CT_SAVED_BUCKETS=

# Stop one process we started: SIGTERM, then SIGKILL after 3 s.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    [ -n "$CURRENT_PEER" ] && { "teardown_$CURRENT_PEER" || true; }
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    ip netns del "$NS_RTR" 2>/dev/null || true
    restore_ct_sysctls
    # Deleting a namespace deletes its veth ends and with them the root-namespace peers.
    ip netns del "$NS_GEN" 2>/dev/null || true
    ip netns del "$NS_SINK" 2>/dev/null || true
    for l in "$G1" "$S1" "$BR" "$OVS_BR" "$VS_BR"; do ip link del "$l" 2>/dev/null || true; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Copy a peer's logs to --logs DIR before its teardown removes them.
keep_logs() {
    [ -n "$LOGS_KEEP" ] || return 0
    mkdir -p "$LOGS_KEEP"
    local f
    for f in "$@"; do [ -e "$f" ] && cp -r "$f" "$LOGS_KEEP/" 2>/dev/null; done
    find "$LOGS_KEEP" -type s -delete 2>/dev/null
    return 0
}

# Start a background process, remember its PID in $! and in PIDS.
spawn() {
    "$@" &
    PIDS+=("$!")
}

# Wait up to $2 seconds for file $1 to contain $3.
wait_for() {
    local file=$1 secs=$2 pat=$3
    for _ in $(seq $((secs * 10))); do
        grep -q -- "$pat" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

nsx() { ip netns exec "$@"; }

# nat + router: the conntrack table size is one setting for the whole machine (only the
# initial namespace may write it). Raise it (never lower) to what vswitchd's table allows,
# 2^21 entries, with a hash of 2^20 buckets, so the new-connections measurement never fills
# it; the originals come back on exit, however the run ends.
CT_MAX=2097152
CT_BUCKETS=1048576
raise_ct_sysctls() {
    local f=/proc/sys/net/netfilter
    # Two runs at once would save each other's raised values as "original": one at a time.
    # The lock goes with the process (fd 9), however it ends.
    exec 9>>/run/lock/benchlab-nat.lock || die "cannot open /run/lock/benchlab-nat.lock"
    flock -n 9 || die "another NAT scenario run holds /run/lock/benchlab-nat.lock (one at a time: it changes machine-wide conntrack settings)"
    [ -r "$f/nf_conntrack_max" ] || modprobe nf_conntrack 2>/dev/null || true
    [ -r "$f/nf_conntrack_max" ] || die "no $f/nf_conntrack_max (nf_conntrack missing from the kernel?)"
    CT_SAVED_MAX=$(cat "$f/nf_conntrack_max")
    CT_SAVED_BUCKETS=$(cat "$f/nf_conntrack_buckets")
    [ "$CT_SAVED_BUCKETS" -ge "$CT_BUCKETS" ] || echo "$CT_BUCKETS" >"$f/nf_conntrack_buckets" ||
        die "cannot set nf_conntrack_buckets"
    [ "$CT_SAVED_MAX" -ge "$CT_MAX" ] || echo "$CT_MAX" >"$f/nf_conntrack_max" ||
        die "cannot set nf_conntrack_max"
    log "nf_conntrack_max $CT_SAVED_MAX -> $(cat "$f/nf_conntrack_max"), buckets $CT_SAVED_BUCKETS -> $(cat "$f/nf_conntrack_buckets") (restored on exit)"
}
restore_ct_sysctls() {
    local f=/proc/sys/net/netfilter
    [ -n "$CT_SAVED_MAX" ] && echo "$CT_SAVED_MAX" >"$f/nf_conntrack_max" 2>/dev/null
    [ -n "$CT_SAVED_BUCKETS" ] && echo "$CT_SAVED_BUCKETS" >"$f/nf_conntrack_buckets" 2>/dev/null
    CT_SAVED_MAX=
    CT_SAVED_BUCKETS=
    return 0
}

# ---------------------------------------------------------------------------------------------
# Topology. Namespace-side veths: tx/tso/gso/gro off (no partial checksums, no super-frames).
setup_topology() {
    ip netns add "$NS_GEN"
    ip netns add "$NS_SINK"
    ip link add "$G0" netns "$NS_GEN" type veth peer name "$G1"
    ip link add "$S0" netns "$NS_SINK" type veth peer name "$S1"
    ip -n "$NS_GEN" link set "$G0" up
    ip -n "$NS_SINK" link set "$S0" up
    nsx "$NS_GEN" ethtool -K "$G0" tx off tso off gso off gro off >/dev/null
    nsx "$NS_SINK" ethtool -K "$S0" tx off tso off gso off gro off >/dev/null
    ip link set "$G1" up
    ip link set "$S1" up
    SINK_MAC=$(nsx "$NS_SINK" cat "/sys/class/net/$S0/address")
    GEN_MAC=$(nsx "$NS_GEN" cat "/sys/class/net/$G0/address")
    G1_MAC=$(cat "/sys/class/net/$G1/address")
    S1_MAC=$(cat "/sys/class/net/$S1/address")
    # forward: frames are addressed to the sink (switches); nat: to the router's port, as a
    # host behind a gateway would send them (the Linux router accepts nothing else).
    GEN_DST_MAC=$SINK_MAC
    [ "$SCENARIO" = nat ] && GEN_DST_MAC=$G1_MAC
    # Sink: XDP_DROP on the sink end. Frames are counted in its rx_packets and cost the
    # sink's stack nothing (no skb, no IP input), so the peer is all that is measured.
    spawn ip netns exec "$NS_SINK" "$BENCHLAB" hold --dev "$S0" --action drop --seconds 86400 >"$TMP/sink.out" 2>&1
    wait_for "$TMP/sink.out" 5 ready || die "sink XDP program did not attach: $(cat "$TMP/sink.out")"
}

# ---------------------------------------------------------------------------------------------
# Measurement helpers.

sink_rx() { nsx "$NS_SINK" cat "/sys/class/net/$S0/statistics/rx_packets"; }

PEER_PID=   # the peer's process, if it is one (for per-process CPU)
PEER_EXTRA= # peer-specific cost figure, set by post_<peer>

# The generator's traffic arguments for FLOWS: a flow count, or `new` (every frame a new
# connection, for NEW_SECONDS).
gen_traffic() {
    if [ "$1" = new ]; then echo "--new-conns --flows 1"; else echo "--flows $1"; fi
}

# One measurement: offer FLOWS flows for MEAS_SECONDS, count what reaches the sink. The
# generator itself reports CPU 0 / CPU 1 busy shares and the peer process's CPU over exactly
# its traffic window. In the nat scenario, the peer's conntrack entries are counted after it.
measure() {
    local peer=$1 flows=$2 round=$3
    local rx0 rx1 out secs=$MEAS_SECONDS
    [ "$flows" = new ] && secs=$NEW_SECONDS
    "pre_$peer" || true
    rx0=$(sink_rx)
    # shellcheck disable=SC2086,SC2046 # optional argument pair, traffic arguments
    if ! out=$(taskset -c 0 ip netns exec "$NS_GEN" "$BENCHLAB" gen --dev "$G0" $(gen_traffic "$flows") \
        --seconds "$secs" --max-frames $((${secs%.*} * 20000000 + 20000000)) \
        --dst-mac "$GEN_DST_MAC" --src-ip "$SRC_IP" --dst-ip "$DST_IP" --mode "$GEN_MODE" \
        ${PEER_PID:+--peer-pid $PEER_PID} 2>&1); then
        if [ -z "$out" ] || [[ "$out" == generator=* ]]; then die "interrupted"; fi
        die "generator failed: $out"
    fi
    sleep 0.2 # let the peer drain what is in flight (at most a few rings' worth)
    rx1=$(sink_rx)
    PEER_EXTRA=-
    "post_$peer" || true
    # nat: conntrack entries after the measurement and, for existing connections, how many of
    # them carry the SNAT binding (the proof that every flow was tracked and translated).
    local entries=- snat=-
    if [ "$SCENARIO" = nat ]; then
        entries=$("ct_count_$peer")
        if [ "$flows" != new ]; then
            snat=$("ct_snat_count_$peer")
            if [ "$entries" != - ] && { [ "$entries" != "$flows" ] || [ "$snat" != "$flows" ]; }; then
                log "WARNING $peer: $entries conntrack entries ($snat SNAT) after $flows flows, expected $flows"
            fi
        fi
    fi
    awk -v peer="$peer" -v flows="$flows" -v round="$round" -v out="$out" \
        -v rx=$((rx1 - rx0)) -v extra="$PEER_EXTRA" -v entries="$entries" -v snat="$snat" 'BEGIN {
            n = split(out, kv, /[ \n]/)
            for (i = 1; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
            secs = v["seconds"]; offered = v["offered"]
            loss = offered > 0 ? 100 * (offered - rx) / offered : 0
            # New connections: entries created per second of traffic (the table was flushed).
            rate = (flows == "new" && entries ~ /^[0-9]+$/) ? sprintf("%.0f", entries / secs) : "-"
            # The Linux router has no process: its forwarding is CPU 1 softirq time.
            pcpu = peer == "router" ? v["cpu1_softirq"] : v["peer_cpu"]
            # Frames forwarded per second of CPU used by the peer (less noisy on a busy machine).
            percore = (pcpu ~ /^[0-9.]+$/ && pcpu > 0) ? sprintf("%.0f", rx / secs * 100 / pcpu) : "-"
            printf "%d\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", round, peer,
                flows, offered / secs, v["dev_tx_pps"], rx / secs, loss, v["cpu0"], v["cpu1"], pcpu,
                extra, v["generator"], entries, snat, rate, percore
        }' | tee -a "$RESULTS" >&2
}

# Half a second of traffic (the largest flow count, or the given FLOWS / `new`) before a
# peer's measurements, so that the first one does not include cache fills and first-packet
# paths. In the nat scenario, the warm-up with N flows is also what creates the N connections
# the measurement then finds (measure_nat repeats it until all N exist).
warm_up() {
    local most=${1:-}
    [ -n "$most" ] || most=$(echo "$FLOWS" | tr ' ' '\n' | sort -n | tail -1)
    # shellcheck disable=SC2046 # traffic arguments
    taskset -c 0 ip netns exec "$NS_GEN" "$BENCHLAB" gen --dev "$G0" $(gen_traffic "$most") --seconds 0.5 \
        --dst-mac "$GEN_DST_MAC" --src-ip "$SRC_IP" --dst-ip "$DST_IP" --mode "$GEN_MODE" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# The same 3-table pipeline for every OpenFlow peer: in_port -> ip,nw_dst -> output.
write_pipeline() {
    cat >"$1" <<EOF
table=0,priority=10,in_port=1 actions=goto_table:1
table=1,priority=10,ip,nw_dst=${DST_IP%.*}.0/24 actions=goto_table:2
table=2,priority=10,ip actions=output:2
EOF
}

# nat: the same policy for every peer. Port 1 (G1) is the inside, port 2 (S1) the outside;
# frames are routed like the Linux router does it: addressed to the router's MAC on the way
# in, MACs rewritten and TTL decremented on the way out; conntrack in zone 1, SNAT of new
# connections to PUBLIC_IP (ports kept unless they collide), invalid packets dropped; the
# return direction goes back through the translation (un-SNAT) and only for established
# connections. Only the inside-to-outside direction is offered.
write_nat_pipeline() {
    cat >"$1" <<EOF
table=0,priority=10,ip,in_port=1,dl_dst=$G1_MAC actions=ct(commit,zone=1,nat(src=$PUBLIC_IP),table=1)
table=0,priority=10,ip,in_port=2,dl_dst=$S1_MAC actions=ct(zone=1,nat,table=1)
table=0,priority=0 actions=drop
table=1,priority=10,ct_state=-inv+trk,ip,in_port=1 actions=dec_ttl,mod_dl_src:$S1_MAC,mod_dl_dst:$SINK_MAC,output:2
table=1,priority=10,ct_state=+est+trk,ip,in_port=2 actions=dec_ttl,mod_dl_src:$G1_MAC,mod_dl_dst:$GEN_MAC,output:1
table=1,priority=0 actions=drop
EOF
}

# ---------------------------------------------------------------------------------------------
# Peer (a): Linux bridge. The veth delivers generator frames as XDP frames, which a veth only
# accepts with NAPI on: GRO on the ingress end turns it on. RPS moves the bridge's work from
# the generator's CPU (where veth runs the receive side) to CPU 1, like the other peers.
setup_bridge() {
    PEER_PID=
    ip link add "$BR" type bridge || return 1
    ip link set "$G1" master "$BR" || return 1
    ip link set "$S1" master "$BR" || return 1
    ip link set "$BR" up || return 1
    ethtool -K "$G1" gro on || return 1
    echo 2 >"/sys/class/net/$G1/queues/rx-0/rps_cpus" || return 1
    # A static entry: the sink never sends, so without it every frame would be flooded.
    bridge fdb replace "$SINK_MAC" dev "$S1" master static || return 1
}
teardown_bridge() {
    ip link del "$BR" 2>/dev/null || true
    echo 0 >"/sys/class/net/$G1/queues/rx-0/rps_cpus" 2>/dev/null || true
    ethtool -K "$G1" gro off 2>/dev/null || true
}
pre_bridge() { :; }
post_bridge() { :; }

# Peer (nat): Linux router. A namespace of its own (ip_forward, conntrack and nftables of the
# root namespace are the machine's, not ours): G1 and S1 move into it for the peer's turn
# and back afterwards. nftables: SNAT to PUBLIC_IP on the way out, invalid packets dropped in
# forward (the same policy as the vswitchd flows). The sink never answers: a permanent
# neighbour entry for it. Like the bridge: GRO on G1 (a veth takes XDP-sent frames only with
# NAPI on) and RPS to CPU 1, so the forwarding, conntrack and NAT run on the peer's CPU.
RTR_MOVED=
setup_router() {
    PEER_PID=
    ip netns add "$NS_RTR" || return 1
    ip link set "$G1" netns "$NS_RTR" || return 1
    RTR_MOVED=1
    ip link set "$S1" netns "$NS_RTR" || return 1
    nsx "$NS_RTR" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward' || return 1
    ip -n "$NS_RTR" link set lo up || return 1
    ip -n "$NS_RTR" addr add "$RTR_IN_IP/24" dev "$G1" || return 1
    ip -n "$NS_RTR" addr add "$PUBLIC_IP/24" dev "$S1" || return 1
    ip -n "$NS_RTR" link set "$G1" up || return 1
    ip -n "$NS_RTR" link set "$S1" up || return 1
    ip -n "$NS_RTR" neigh replace "$DST_IP" lladdr "$SINK_MAC" dev "$S1" nud permanent || return 1
    nsx "$NS_RTR" ethtool -K "$G1" gro on >/dev/null || return 1
    nsx "$NS_RTR" sh -c "echo 2 >/sys/class/net/$G1/queues/rx-0/rps_cpus" || return 1
    nsx "$NS_RTR" nft -f - <<EOF || return 1
table ip benchlab_nat {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ct state invalid drop
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "$S1" ip saddr ${SRC_IP%.*}.0/24 snat to $PUBLIC_IP
    }
}
EOF
    nsx "$NS_RTR" conntrack -C >/dev/null || return 1
}
teardown_router() {
    local l
    if [ -n "$RTR_MOVED" ]; then
        [ -n "$LOGS_KEEP" ] && mkdir -p "$LOGS_KEEP" &&
            nsx "$NS_RTR" nft list ruleset >"$LOGS_KEEP/router-ruleset.txt" 2>&1
        for l in "$G1" "$S1"; do
            ip -n "$NS_RTR" link set "$l" netns "$$" 2>/dev/null || true
        done
        RTR_MOVED=
    fi
    ip netns del "$NS_RTR" 2>/dev/null || true
    # Back in the root namespace the links are down and without addresses; leave them as the
    # other peers expect them.
    ethtool -K "$G1" gro off 2>/dev/null || true
    echo 0 >"/sys/class/net/$G1/queues/rx-0/rps_cpus" 2>/dev/null || true
    ip link set "$G1" up 2>/dev/null || true
    ip link set "$S1" up 2>/dev/null || true
}
pre_router() { :; }
post_router() { :; }
# Every conntrack call bounded in time, like the rest of the run.
ct_flush_router() { timeout 60 ip netns exec "$NS_RTR" conntrack -F >/dev/null 2>&1; }
ct_count_router() { timeout 30 ip netns exec "$NS_RTR" conntrack -C 2>/dev/null || echo -; }
# Connections whose reply goes to PUBLIC_IP, i.e. source-NATed (conntrack -L prints a summary
# line on stderr).
ct_snat_count_router() { timeout 30 ip netns exec "$NS_RTR" conntrack -L -p udp --src-nat 2>/dev/null | grep -c "dst=$PUBLIC_IP"; }

# Peer (b): the bare AF_XDP forwarder (benchlab fwd), pinned to CPU 1.
setup_afxdp() {
    spawn taskset -c 1 "$BENCHLAB" fwd --a "$G1" --b "$S1" --seconds 3600 >"$TMP/fwd.out" 2>&1
    PEER_PID=$!
    wait_for "$TMP/fwd.out" 5 ready || { cat "$TMP/fwd.out"; return 1; }
}
teardown_afxdp() {
    keep_logs "$TMP/fwd.out"
    [ -n "$PEER_PID" ] && stop_pid "$PEER_PID"
    PEER_PID=
}
# SIGUSR1: the forwarder prints its busy figures since the previous one (`stats ...` lines).
pre_afxdp() { kill -USR1 "$PEER_PID"; }
post_afxdp() {
    local before
    before=$(grep -c '^stats ' "$TMP/fwd.out" || true)
    kill -USR1 "$PEER_PID" || return 0
    for _ in $(seq 50); do
        [ "$(grep -c '^stats ' "$TMP/fwd.out" || true)" -gt "$before" ] && break
        sleep 0.02
    done
    PEER_EXTRA=$(awk '/^stats / { for (i = 2; i <= NF; i++) if ($i ~ /^busy_ns_per_packet=/) { split($i, a, "="); v = a[2] } } END { if (v != "") printf "%.0f ns", v; else print "-" }' "$TMP/fwd.out")
}
ct_flush_afxdp() { :; }
ct_count_afxdp() { echo -; }
ct_snat_count_afxdp() { echo -; }

# Peer (c): Open vSwitch userspace datapath (datapath_type=netdev), type=afxdp ports, PMD on
# CPU 1, started privately: own database, sockets, logs and pidfiles under $TMP/ovs.
OVS_VSWITCHD=
OVS_VSCTL=
find_ovs() {
    OVS_VSWITCHD=$(command -v ovs-vswitchd || true)
    [ -n "$OVS_VSWITCHD" ] || OVS_VSWITCHD=$OVS_ROOT/usr/lib/openvswitch-switch/ovs-vswitchd
    OVS_VSCTL=$(command -v ovs-vsctl || true)
    [ -n "$OVS_VSCTL" ] || OVS_VSCTL=$OVS_ROOT/usr/bin/ovs-vsctl
    OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
    [ -r "$OVS_SCHEMA" ] || OVS_SCHEMA=$OVS_ROOT/usr/share/openvswitch/vswitch.ovsschema
    local c
    for c in "$OVS_VSWITCHD" "$OVS_VSCTL" "$OVS_SCHEMA"; do
        [ -e "$c" ] || { echo "missing $c (run bench/lab/get-ovs.sh)"; return 1; }
    done
    for c in ovsdb-server ovsdb-tool ovs-appctl ovs-ofctl; do
        command -v "$c" >/dev/null || { echo "missing $c (apt-get install openvswitch-common)"; return 1; }
    done
}
OVS_DIR=$TMP/ovs
OVSDB_PID=
ovs_env() { env OVS_RUNDIR="$OVS_DIR" OVS_LOGDIR="$OVS_DIR" OVS_DBDIR="$OVS_DIR" OVS_SYSCONFDIR="$OVS_DIR/etc" "$@"; }
vsctl() { ovs_env "$OVS_VSCTL" --db="unix:$OVS_DIR/db.sock" --timeout=10 "$@"; }
ovs_appctl() { ovs_env ovs-appctl -t "$OVS_DIR/vswitchd.ctl" --timeout=10 "$@"; }
setup_ovs() {
    # The userspace datapath creates a tap named ovs-netdev; remove it at teardown only if this
    # run created it (never touch one that belongs to someone else).
    OVS_NETDEV_PREEXISTING=
    ip link show ovs-netdev >/dev/null 2>&1 && OVS_NETDEV_PREEXISTING=1
    mkdir -p "$OVS_DIR/etc"
    ovsdb-tool create "$OVS_DIR/conf.db" "$OVS_SCHEMA" || return 1
    spawn env OVS_RUNDIR="$OVS_DIR" OVS_LOGDIR="$OVS_DIR" OVS_DBDIR="$OVS_DIR" OVS_SYSCONFDIR="$OVS_DIR/etc" taskset -c "$CTL_CPU" ovsdb-server "$OVS_DIR/conf.db" --remote="punix:$OVS_DIR/db.sock" \
        --unixctl="$OVS_DIR/ovsdb.ctl" --pidfile="$OVS_DIR/ovsdb.pid" --log-file="$OVS_DIR/ovsdb.log" \
        --no-chdir 2>>"$OVS_DIR/ovsdb.err"
    OVSDB_PID=$!
    for _ in $(seq 50); do [ -S "$OVS_DIR/db.sock" ] && break; sleep 0.1; done
    [ -S "$OVS_DIR/db.sock" ] || { echo "ovsdb-server did not start: $(cat "$OVS_DIR/ovsdb.err")"; return 1; }
    vsctl --no-wait init || return 1
    vsctl --no-wait set Open_vSwitch . other_config:pmd-cpu-mask=0x2 || return 1
    spawn env OVS_RUNDIR="$OVS_DIR" OVS_LOGDIR="$OVS_DIR" OVS_DBDIR="$OVS_DIR" OVS_SYSCONFDIR="$OVS_DIR/etc" taskset -c "$CTL_CPU" "$OVS_VSWITCHD" "unix:$OVS_DIR/db.sock" --disable-system \
        --unixctl="$OVS_DIR/vswitchd.ctl" --pidfile="$OVS_DIR/vswitchd.pid" \
        --log-file="$OVS_DIR/vswitchd.log" --no-chdir 2>>"$OVS_DIR/vswitchd.err"
    PEER_PID=$!
    vsctl add-br "$OVS_BR" -- set bridge "$OVS_BR" datapath_type=netdev protocols=OpenFlow10,OpenFlow13 || return 1
    vsctl add-port "$OVS_BR" "$G1" -- set interface "$G1" type=afxdp options:xdp-mode=native \
        options:n_rxq=1 ofport_request=1 || return 1
    vsctl add-port "$OVS_BR" "$S1" -- set interface "$S1" type=afxdp options:xdp-mode=native \
        options:n_rxq=1 ofport_request=2 || return 1
    local port err
    for port in "$G1" "$S1"; do
        err=$(vsctl get interface "$port" error 2>/dev/null || true)
        if [ "$(vsctl get interface "$port" ofport)" = -1 ] || [ -n "${err#\[\]}" ]; then
            echo "OVS could not open $port as afxdp: $err" >&2
            tail -5 "$OVS_DIR/vswitchd.log" >&2
            return 1
        fi
    done
    if [ "$SCENARIO" = nat ]; then write_nat_pipeline "$OVS_DIR/flows"; else write_pipeline "$OVS_DIR/flows"; fi
    ovs_env ovs-ofctl -O OpenFlow13 del-flows "unix:$OVS_DIR/$OVS_BR.mgmt" || return 1
    ovs_env ovs-ofctl -O OpenFlow13 add-flows "unix:$OVS_DIR/$OVS_BR.mgmt" "$OVS_DIR/flows" || return 1
}
teardown_ovs() {
    [ -d "$OVS_DIR" ] && vsctl show >"$OVS_DIR/vsctl-show.txt" 2>&1
    [ -d "$OVS_DIR" ] && vsctl list interface >"$OVS_DIR/interfaces.txt" 2>&1
    keep_logs "$OVS_DIR"
    if [ -n "$PEER_PID" ]; then
        # --cleanup removes the datapath and its ports (and their XDP programs).
        ovs_appctl exit --cleanup >/dev/null 2>&1 || true
        stop_pid "$PEER_PID"
    fi
    [ -n "$OVSDB_PID" ] && stop_pid "$OVSDB_PID"
    PEER_PID=
    OVSDB_PID=
    # Never leave an XDP program on our links, whatever OVS did.
    ip link set dev "$G1" xdp off 2>/dev/null || true
    ip link set dev "$S1" xdp off 2>/dev/null || true
    [ -z "${OVS_NETDEV_PREEXISTING:-}" ] && ip link del ovs-netdev 2>/dev/null
    rm -rf "$OVS_DIR"
    return 0
}
pre_ovs() { ovs_appctl dpif-netdev/pmd-stats-clear >/dev/null; }
ct_flush_ovs() { ovs_appctl dpctl/flush-conntrack >/dev/null; }
ct_count_ovs() { ovs_appctl dpctl/ct-get-nconns 2>/dev/null || echo -; }
# udp,orig=(...),reply=(src=10.250.1.1,dst=10.250.1.254,...),zone=1: source-NATed.
ct_snat_count_ovs() { ovs_appctl dpctl/dump-conntrack 2>/dev/null | grep -c "reply=(src=[^,]*,dst=$PUBLIC_IP,"; }
post_ovs() {
    ovs_appctl dpif-netdev/pmd-stats-show >"$TMP/pmd.txt" 2>&1 || true
    # "avg processing cycles per packet: 1234.56 (...)": the PMD's busy cycles per packet.
    PEER_EXTRA=$(awk -F': ' '/avg processing cycles per packet/ { split($2, a, " "); printf "%.0f cyc", a[1] }' "$TMP/pmd.txt")
    PEER_EXTRA=${PEER_EXTRA:--}
}

# Peer (d): vswitchd, the switch of this project. THE HOOK: start command and port setup are
# here and nowhere else. A binary that does not support a step yet makes the peer
# "not available" for the run; the others go on.
VS_DIR=$TMP/vswitchd
setup_vswitchd() {
    if [ ! -x "$VSWITCHD" ] || [ ! -x "$SWCTL" ]; then
        echo "no binaries at $VSWITCHD / $SWCTL" >&2
        return 1
    fi
    mkdir -p "$VS_DIR" || return 1
    local sock=$VS_DIR/vswitchd.sock
    spawn taskset -c "$CTL_CPU" "$VSWITCHD" --socket "$sock" --db "$VS_DIR/conf.db" --workers 1 --pmd-cpus 1 --idle busy \
        >"$VS_DIR/log" 2>&1
    PEER_PID=$!
    for _ in $(seq 50); do
        [ -S "$sock" ] && break
        kill -0 "$PEER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -S "$sock" ]; then
        # clap and our own errors start with "error"; otherwise the last lines say why.
        echo "vswitchd did not start: $(grep -m1 -i error "$VS_DIR/log" || tail -3 "$VS_DIR/log")" >&2
        return 1
    fi
    if [ "$SCENARIO" = nat ]; then write_nat_pipeline "$VS_DIR/flows"; else write_pipeline "$VS_DIR/flows"; fi
    "$SWCTL" --socket "$sock" add-br "$VS_BR" >&2 &&
        "$SWCTL" --socket "$sock" add-port "$VS_BR" "$G1" --type afxdp --ofport 1 >&2 &&
        "$SWCTL" --socket "$sock" add-port "$VS_BR" "$S1" --type afxdp --ofport 2 >&2 &&
        "$SWCTL" --socket "$sock" add-flows "$VS_BR" "$VS_DIR/flows" >&2 &&
        "$SWCTL" --socket "$sock" pmd-stats --json >/dev/null
}
teardown_vswitchd() {
    keep_logs "$VS_DIR"
    [ -n "$PEER_PID" ] && stop_pid "$PEER_PID"
    PEER_PID=
    ip link set dev "$G1" xdp off 2>/dev/null || true
    ip link set dev "$S1" xdp off 2>/dev/null || true
    rm -rf "$VS_DIR"
}
vs_sum() { # sum a numeric field over all workers of `swctl pmd-stats --json`
    # %.0f, not %d: mawk's %d clamps at 2^31-1, and 5 s of busy nanoseconds exceed it.
    grep -o "\"$1\": *[0-9.]*" "$2" | awk -F: '{ s += $2 } END { printf "%.0f", s }'
}
pre_vswitchd() { "$SWCTL" --socket "$VS_DIR/vswitchd.sock" pmd-stats --clear >/dev/null; }
post_vswitchd() {
    "$SWCTL" --socket "$VS_DIR/vswitchd.sock" pmd-stats --json >"$TMP/vs.json" 2>&1 || true
    local pk busy
    pk=$(vs_sum packets "$TMP/vs.json"); busy=$(vs_sum busy_ns "$TMP/vs.json")
    PEER_EXTRA=$(awk -v p="$pk" -v b="$busy" 'BEGIN { if (p > 0) printf "%.0f ns", b / p; else print "-" }')
}
ct_flush_vswitchd() { timeout 60 "$SWCTL" --socket "$VS_DIR/vswitchd.sock" flush-conntrack >/dev/null; }
ct_count_vswitchd() {
    timeout 30 "$SWCTL" --socket "$VS_DIR/vswitchd.sock" conntrack-stats --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["entries"])' 2>/dev/null || echo -
}
# Zone-1 connections flagged SNAT whose reply tuple goes to PUBLIC_IP.
ct_snat_count_vswitchd() {
    timeout 30 "$SWCTL" --socket "$VS_DIR/vswitchd.sock" dump-conntrack --zone 1 --json 2>/dev/null |
        python3 -c 'import json, sys
d = json.load(sys.stdin)
print(sum(1 for e in d if e.get("snat") and e["reply"]["dst"] == sys.argv[1]))' "$PUBLIC_IP" 2>/dev/null || echo -
}

# ---------------------------------------------------------------------------------------------
# Markdown table of medians over rounds, per (flows, peer).
report() {
    local f p cols="4 5 6 7 8 9 10 11" flows=$FLOWS empty="| | | | | | | |"
    echo
    if [ "$SCENARIO" = nat ]; then
        # Columns 13-16: conntrack entries after, of which SNAT, entries created per second,
        # forwarded per second of peer CPU.
        cols="$cols 13 14 15 16"
        flows="$FLOWS new"
        empty="$empty | | | |"
        echo "| flows | peer | offered kpps | gen veth tx kpps | forwarded kpps | loss % | CPU0 % | CPU1 % | peer CPU % | peer busy per packet | conntrack entries after | of which SNAT | new conns/s | kpps per peer core | rounds |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    else
        echo "| flows | peer | offered kpps | gen veth tx kpps | forwarded kpps | loss % | CPU0 % | CPU1 % | peer process CPU % | peer busy per packet | rounds |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
    fi
    for f in $flows; do
        for p in $PEERS; do
            awk -F'\t' -v f="$f" -v p="$p" '$2 == p && $3 == f' "$RESULTS" >"$TMP/sel"
            if [ ! -s "$TMP/sel" ]; then
                echo "| $f | $p | not available $empty 0 |"
                continue
            fi
            printf '| %s | %s' "$f" "$p"
            local col
            for col in $cols; do
                printf ' | %s' "$(median_col "$col" "$TMP/sel")"
            done
            printf ' | %s |\n' "$(wc -l <"$TMP/sel")"
        done
    done
}
# Median of column $1 ("-" when not numeric); pps columns shown in kpps.
median_col() {
    local col=$1 file=$2
    cut -f"$col" "$file" | awk -v col="$col" '{ v = $1; u = $2 }
        v ~ /^[0-9.]+$/ { a[n++] = v }
        END {
            if (n == 0) { print "-"; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            m = (n % 2) ? a[int(n / 2)] : (a[n / 2 - 1] + a[n / 2]) / 2
            if (col <= 6 || col == 16) printf "%.0f", m / 1000
            else if (col >= 10) printf "%.0f%s", m, (u != "" ? " " u : "")
            else if (col == 7) printf "%.1f", m
            else printf "%.0f", m
        }'
}

# nat, one peer: for each flow count, empty table, warm-up with those flows (creates the
# connections), measurement (finds them); then new connections (warm-up, empty table, every
# frame a new connection; the entries counted after are the connections created). Existing
# connections first: the new-connection pass leaves ~10^6 entries to flush, and a table that
# held that many does not look up 10 000 as fast as a fresh one (bench/LAB.md).
measure_nat() {
    local p=$1 r=$2 f n i
    for f in $FLOWS; do
        "ct_flush_$p" || log "$p: conntrack flush failed"
        # Flows are drawn at random: a peer that got little CPU may not have seen every one
        # in half a second. Warm up again (at most 5 times) until all N connections exist.
        for i in 1 2 3 4 5; do
            warm_up "$f"
            n=$("ct_count_$p")
            if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -ge "$f" ]; then break; fi
        done
        log "$p: $n conntrack entries after $i warm-up(s) with $f flows"
        measure "$p" "$f" "$r"
    done
    warm_up new
    "ct_flush_$p" || log "$p: conntrack flush failed"
    measure "$p" new "$r"
}

# ---------------------------------------------------------------------------------------------
main() {
    local p f r reason
    declare -A UNAVAILABLE=()
    OVS_SCHEMA=
    if [[ " $PEERS " == *" ovs "* ]] && ! find_ovs >"$TMP/find_ovs.log" 2>&1; then
        UNAVAILABLE[ovs]=$(cat "$TMP/find_ovs.log")
    fi
    if [ "$SCENARIO" = nat ] && [[ " $PEERS " == *" router "* ]]; then raise_ct_sysctls; fi
    setup_topology
    log "run $P: scenario $SCENARIO, ${MEAS_SECONDS}s x $ROUNDS rounds, flows: $FLOWS, peers: $PEERS"
    [ "$SCENARIO" = nat ] && log "nat: new connections for ${NEW_SECONDS}s first, SNAT to $PUBLIC_IP"
    log "generator (mode $GEN_MODE) on CPU 0; peer on CPU 1; sink: XDP_DROP"
    log "round peer flows offered_pps gen_veth_tx_pps forwarded_pps loss% cpu0% cpu1% peer_cpu% peer_cost generator ct_entries ct_snat new_conns_per_s fwd_pps_per_peer_core"
    : >"$RESULTS"
    for r in $(seq "$ROUNDS"); do
        for p in $PEERS; do
            [ -n "${UNAVAILABLE[$p]:-}" ] && continue
            CURRENT_PEER=$p
            # In the current shell (setup records PIDs); every step checks its own status.
            if ! "setup_$p" >"$TMP/setup.log" 2>&1; then
                reason=$(grep -v '^$' "$TMP/setup.log" | tail -3 | tr '\n' ' ')
                UNAVAILABLE[$p]=${reason:-setup failed}
                log "$p: not available: ${UNAVAILABLE[$p]}"
                "teardown_$p" || true
                CURRENT_PEER=
                continue
            fi
            sleep 0.5 # ports up, programs attached, PMD polling
            if [ "$SCENARIO" = nat ]; then
                measure_nat "$p" "$r"
            else
                warm_up
                for f in $FLOWS; do measure "$p" "$f" "$r"; done
            fi
            "teardown_$p"
            CURRENT_PEER=
        done
    done
    for p in "${!UNAVAILABLE[@]}"; do
        echo "$p: not available: ${UNAVAILABLE[$p]}" | head -3
    done
    report
    echo
    echo "Generator: $(cut -f12 "$RESULTS" | sort -u | tr '\n' ' ')(benchlab gen; CPU 0). Peer on CPU 1."
    [ -z "$RESULTS_KEEP" ] || cp "$RESULTS" "$RESULTS_KEEP"
}
main
