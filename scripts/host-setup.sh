#!/usr/bin/env bash
# Prepares a Debian host (as root) for crius's tests: the packages it drives, and the one cgroup
# fix-up this kind of machine needs. Idempotent; prints what it changed.
set -euo pipefail

pkgs=(runc crun conmon containernetworking-plugins skopeo docker-registry busybox-static
      iproute2 iptables protobuf-compiler)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "host-setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Hybrid cgroups (v1 hierarchies plus a v2 mount) where the v2 hierarchy still holds a controller:
# crun 1.8 refuses that layout. Mounting each such controller as a v1 hierarchy moves it off v2.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then
  for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    if [ ! -d "/sys/fs/cgroup/$c" ] || ! mountpoint -q "/sys/fs/cgroup/$c"; then
      mkdir -p "/sys/fs/cgroup/$c"
      mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
      echo "host-setup: mounted the $c controller as a cgroup v1 hierarchy (crun needs it off v2)"
    fi
  done
fi
