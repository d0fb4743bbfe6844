#!/usr/bin/env bash
# make demo-s1: the S1 lab (shared/scenarios.md; seeds 000/001: a floating IP served on two
# paths, the client's ssh reset by the network node) run for a person to read.
#
#   Part 1   plain Linux, as in the seed: network node with conntrack DNAT, compute node with
#            a stateless SNAT that sends the VM's replies straight out. Prints, node by node,
#            the captures, the conntrack events and entries, the nftables counters, and why.
#   Part 1b  the same lab with symmetric routing: the connection works (the control).
#   Part 2   the same lab through two vswitchd instances (one per node namespace): network
#            node with one-sided conntrack (zone 1, profile asym), compute node with the
#            switch's floating-IP recipe. Prints the flows, the captures per node,
#            dump-conntrack, dump-fips, conntrack-stats, dump-ports, pmd-stats, then a
#            spoofed ACK and a SYN flood and what the switch counted.
#   Part 2b  the same with seed 000's own ODL flows on the compute node (and the glue added).
#
# The lab is built by integration/examples/demo_s1.rs with the same code the tests
# integration/tests/lab_s1_linux.rs and lab_s1_switch.rs assert on (integration/src/lab/s1.rs,
# s1/switches.rs). Exits non-zero if part 1 does not reproduce the outage, or part 1b, 2 or
# 2b does not work.
#
# Needs root and: iproute2, ethtool, python3, tcpdump, nftables, conntrack (.ci/run installs
# them). Everything lives in five namespaces named sw<pid%1000>t<n>-{cl,ext,net,cmp,vm}: the
# program removes them when it ends, and if it is killed first this script removes them (by
# that prefix only, through scripts/lab-clean.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

if [ "$(id -u)" != 0 ]; then
  echo "make demo-s1 needs root (network namespaces, veth pairs, nftables)" >&2
  exit 1
fi
missing=()
for tool in ip ethtool python3 tcpdump nft conntrack; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "make demo-s1: missing ${missing[*]}; on Debian:" >&2
  echo "  apt-get install iproute2 ethtool python3 tcpdump nftables conntrack" >&2
  exit 1
fi

"$CARGO" build --quiet -p integration --example demo_s1
# Part 2 runs vswitchd and swctl (integration::bin_dir builds them if needed).
"$CARGO" build --quiet -p control -p dataplane --bins
BIN=${CARGO_TARGET_DIR:-target}/debug/examples/demo_s1

LOG=$(mktemp "${TMPDIR:-/tmp}/demo-s1-$$-XXXXXX.log")
cleanup() {
  set +e
  # The program prints its lab prefix first; remove whatever of that lab is left.
  prefix=$(grep -o -m1 'sw[0-9]*t[0-9]*' "$LOG" 2>/dev/null)
  if [ -n "$prefix" ] && ip netns list | grep -q "^$prefix-"; then
    echo "demo-s1: removing the lab's leftovers ($prefix-*)" >&2
    LAB_CLEAN_ONLY="$prefix-" ./scripts/lab-clean.sh >&2
  fi
  rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN" | tee "$LOG"
