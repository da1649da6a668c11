#!/usr/bin/env bash
# install.sh: set up crius on this Debian host (as root) and start it.
#
#   sudo bash scripts/install.sh [options]
#     --test-registry          start the offline test registry (../shared/testenv, 127.0.0.1:5000)
#                              with its images, and write a registries.conf that mirrors
#                              docker.io, registry.k8s.io, k8s.gcr.io, gcr.io, quay.io and
#                              public.ecr.aws to it (plain HTTP); crius gets --registries-conf
#     --registries-conf PATH   where that file goes (default /etc/crius/registries.conf); also
#                              passed to crius without --test-registry when the file exists
#     --bench                  also install Debian's containerd (the peer bench/run.sh measures)
#     --no-build               install the binaries already in target/release
#     --no-start               install only
#
# Steps, each skipped when already done: scripts/host-setup.sh (packages, crun cgroup fix);
# crictl (go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0, else v1.34.0) into
# /usr/local/bin; cargo build --release; crius, crius-monitor, crius-pause into /usr/local/bin;
# /etc/crius/crius.toml (crius config) if absent; a CNI conflist in /etc/cni/net.d if that is
# empty; /etc/crictl.yaml if absent; crius started in the background (log /var/log/crius.log,
# pid file /run/crius-daemon.pid) and waited for until `crictl info` answers.
# scripts/stop.sh undoes the start.
set -euo pipefail
_tag=install
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

TEST_REGISTRY_MODE=0 REGCONF=/etc/crius/registries.conf BENCH=0 BUILD=1 START=1
while (($#)); do
	case $1 in
	--test-registry) TEST_REGISTRY_MODE=1 ;;
	--registries-conf) REGCONF=$2; shift ;;
	--bench) BENCH=1 ;;
	--no-build) BUILD=0 ;;
	--no-start) START=0 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done
need_root
PREFIX=/usr/local/bin
PIDFILE=/run/crius-daemon.pid
LOG=/var/log/crius.log
SOCK=/run/crius/crius.sock
START_TIMEOUT=${CRIUS_START_TIMEOUT:-60}

# 1. packages
say "host set-up (scripts/host-setup.sh)"
bash "$REPO/scripts/host-setup.sh"
apt_install python3 ca-certificates
((BENCH)) && apt_install containerd

# 2. crictl
if [[ ! -x $PREFIX/crictl ]]; then
	bin=$(ensure_crictl)
	install -m 0755 "$bin" "$PREFIX/crictl"
	say "installed $("$PREFIX/crictl" --version) as $PREFIX/crictl"
fi

# 3. crius
if ((BUILD)); then
	command -v cargo >/dev/null || die "cargo not found (install Rust with rustup first)"
	say "cargo build --release (the workspace's binaries)"
	(cd "$REPO" && cargo build --release --workspace --bins)
fi
for b in crius crius-monitor crius-pause; do
	if [[ -x $TARGET_DIR/release/$b ]]; then
		install -m 0755 "$TARGET_DIR/release/$b" "$PREFIX/$b.new" && mv -f "$PREFIX/$b.new" "$PREFIX/$b"
		say "installed $PREFIX/$b"
	elif [[ $b == crius ]]; then
		die "$TARGET_DIR/release/crius missing (cargo build --release failed?)"
	else
		say "note: $b was not built (not in the workspace yet); skipped"
	fi
done

# 4. configuration
mkdir -p /etc/crius
if [[ ! -e /etc/crius/crius.toml ]]; then
	if "$PREFIX/crius" config >/etc/crius/crius.toml.new 2>/dev/null && [[ -s /etc/crius/crius.toml.new ]]; then
		mv /etc/crius/crius.toml.new /etc/crius/crius.toml
		say "wrote /etc/crius/crius.toml (crius config)"
	else
		rm -f /etc/crius/crius.toml.new
		say "warning: 'crius config' printed nothing: no /etc/crius/crius.toml written (built-in defaults apply)"
	fi
fi
mkdir -p /etc/cni/net.d
if [[ -z $(ls -A /etc/cni/net.d) ]]; then
	shipped=$REPO/crates/crius-network/cni/10-crius-bridge.conflist
	if [[ -f $shipped ]]; then
		install -m 0644 "$shipped" /etc/cni/net.d/10-crius-bridge.conflist
	else
		cat >/etc/cni/net.d/10-crius-bridge.conflist <<'EOF'
{
  "cniVersion": "1.0.0",
  "name": "crius",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "crius0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "routes": [{ "dst": "0.0.0.0/0" }],
        "ranges": [[{ "subnet": "10.85.0.0/16", "gateway": "10.85.0.1" }]]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
	fi
	say "installed the default CNI network /etc/cni/net.d/10-crius-bridge.conflist"
fi
if [[ ! -e /etc/crictl.yaml ]]; then
	printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' "$SOCK" "$SOCK" >/etc/crictl.yaml
	say "wrote /etc/crictl.yaml (endpoint unix://$SOCK)"
fi

# 5. the test registry
if ((TEST_REGISTRY_MODE)); then
	[[ -n $TESTENV && -x $TESTENV/registry.sh ]] || die "--test-registry: $REPO/../shared/testenv not found"
	registry_up || "$TESTENV/registry.sh" start >&2
	say "pushing the test images (testenv images.sh)"
	flock /tmp/crius-testenv.lock "$TESTENV/images.sh" >/var/log/crius-testenv-images.log 2>&1 || die "images.sh failed; see /var/log/crius-testenv-images.log"
	write_registries_conf "$REGCONF"
	say "wrote $REGCONF: $MIRRORED_REGISTRIES -> $TEST_REGISTRY"
fi

# 6. start
((START)) || { say "done (not started: --no-start)"; exit 0; }
if pid=$(cat "$PIDFILE" 2>/dev/null) && [[ -d /proc/$pid ]]; then
	say "crius already running (pid $pid); restart it with: bash scripts/stop.sh && bash scripts/install.sh --no-build"
	exit 0
fi
args=("$PREFIX/crius")
[[ -f /etc/crius/crius.toml ]] && args+=(--config /etc/crius/crius.toml)
[[ -f $REGCONF ]] && args+=(--registries-conf "$REGCONF")
# Debian's plugins live in /usr/lib/cni, not in the usual /opt/cni/bin.
[[ ! -d /opt/cni/bin && -d /usr/lib/cni ]] && args+=(--cni-plugin-dir /usr/lib/cni)
[[ -x $PREFIX/crius-monitor ]] && args+=(--conmon "$PREFIX/crius-monitor")
echo "--- $(date -u +%FT%TZ) ${args[*]}" >>"$LOG"
setsid "${args[@]}" >>"$LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$PIDFILE"
for ((i = 0; i < START_TIMEOUT * 10; i++)); do
	if [[ -S $SOCK ]] && "$PREFIX/crictl" --timeout 5s info >/dev/null 2>&1; then
		say "crius running (pid $pid), endpoint unix://$SOCK, log $LOG"
		say "try: crictl version; crictl info; see README.md for a walk-through"
		exit 0
	fi
	if [[ ! -d /proc/$pid ]]; then
		rm -f "$PIDFILE"
		tail -n 20 "$LOG" >&2
		die "crius exited during start-up (log above, $LOG)"
	fi
	sleep 0.1
done
tail -n 20 "$LOG" >&2
die "crius (pid $pid) did not answer 'crictl info' on $SOCK within ${START_TIMEOUT}s (still running; bash scripts/stop.sh stops it)"
