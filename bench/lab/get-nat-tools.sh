#!/usr/bin/env bash
# Install what the NAT scenario's Linux router peer needs (`run.sh --scenario nat`, bench/LAB.md):
# nftables (`nft`: the SNAT rule) and conntrack-tools (`conntrack`: flush, count and list the
# router's connections). Debian's nftables package installs its boot-time service disabled,
# so installing it changes no ruleset; the runner only ever touches its own namespace's rules.
set -euo pipefail
if command -v nft >/dev/null && command -v conntrack >/dev/null; then
    echo "already there: $(command -v nft) $(command -v conntrack)"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "get-nat-tools.sh: run as root (apt-get install)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends nftables conntrack >/dev/null
echo "installed: $(command -v nft) $(command -v conntrack)"
