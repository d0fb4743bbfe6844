#!/usr/bin/env bash
# Fetch Open vSwitch's ovs-vswitchd/ovs-vsctl WITHOUT installing the package: installing
# openvswitch-switch would start (or register) the system's OVS service, which the lab must not
# touch. The .deb is only unpacked under DEST; run.sh starts its own private daemons from there.
# Its libraries (libxdp1, libbpf1, libunbound8, libnuma1) and openvswitch-common (ovsdb-server,
# ovs-appctl, ovs-ofctl) are installed normally.
set -euo pipefail
DEST=${1:-/var/tmp/benchlab-ovs}
if [ -x "$DEST/root/usr/lib/openvswitch-switch/ovs-vswitchd" ]; then
    echo "already there: $DEST/root"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends openvswitch-common libxdp1 libbpf1 libunbound8 \
    libnuma1 libcap-ng0 >/dev/null
mkdir -p "$DEST"
work=$(mktemp -d "$DEST/dl.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download openvswitch-switch 2>/dev/null)
dpkg-deb -x "$work"/openvswitch-switch_*.deb "$DEST/root"
missing=$(ldd "$DEST/root/usr/lib/openvswitch-switch/ovs-vswitchd" | grep 'not found' || true)
[ -z "$missing" ] || { echo "get-ovs.sh: missing libraries: $missing" >&2; exit 1; }
echo "unpacked: $DEST/root"
