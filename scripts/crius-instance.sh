#!/usr/bin/env bash
# crius-instance.sh: a private crius daemon for tests and benchmarks, everything under one
# directory, so that it runs beside anything else on the machine and leaves nothing behind.
#
#   crius-instance.sh start DIR     temp root/runroot/socket/config/CNI/registries.conf under DIR,
#                                   start crius, wait until the CRI answers; writes DIR/env
#   crius-instance.sh restart DIR   stop the daemon only (containers and monitors keep running)
#                                   and start it again with the same arguments
#   crius-instance.sh stop DIR      remove its pods and containers through the CRI, stop the
#                                   daemon, then kill / unmount / delete whatever is left
#                                   (monitors, containers, mounts, netns, bridge, iptables chains)
#   crius-instance.sh status DIR
#
# DIR/env (sourceable): CRIUS_ENDPOINT, CRIUS_SOCK, CRIUS_PID, CRIUS_LOG, CRIUS_POD_LOGS,
# CRIUS_NRI_SOCK (NRI is enabled on it, for critest's -nri-socket).
# Environment: CRIUS_BIN (default: target/debug/crius, else target/release/crius, else PATH),
# CRIUS_MONITOR (default: crius-monitor beside CRIUS_BIN), CRIUS_RUNTIME (runc|crun, default runc),
# CRIUS_LOG_LEVEL (default info), CRIUS_EXTRA_ARGS (appended to the daemon's arguments),
# CRIUS_START_TIMEOUT (seconds, default 60).
set -euo pipefail
_tag=crius-instance
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

find_crius_bin() {
	local b
	for b in ${CRIUS_BIN:-} "$TARGET_DIR/debug/crius" "$TARGET_DIR/release/crius" "$(command -v crius || true)"; do
		[[ -n $b && -x $b ]] && { echo "$b"; return 0; }
	done
	return 1
}

crictl_at() { "$CRICTL" --runtime-endpoint "$CRIUS_ENDPOINT" --image-endpoint "$CRIUS_ENDPOINT" --timeout 30s "$@"; }

daemon_pid() { local p; p=$(cat "$DIR/crius.pid" 2>/dev/null) && [[ -n $p && -d /proc/$p ]] && echo "$p"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

write_env() {
	cat >"$DIR/env" <<EOF
CRIUS_DIR=$DIR
CRIUS_SOCK=$DIR/crius.sock
CRIUS_ENDPOINT=unix://$DIR/crius.sock
CRIUS_PID=$(daemon_pid || true)
CRIUS_LOG=$DIR/crius.log
CRIUS_POD_LOGS=$DIR/pod-logs
CRIUS_BRIDGE=$BRIDGE
CRIUS_NRI_SOCK=$DIR/nri.sock
EOF
}

# The daemon's command line, kept in DIR/args (one argument per line) so that restart reuses it.
prepare() {
	local bin mon port n subnet
	bin=$(find_crius_bin) || die "crius binary missing (build it: cargo build -p crius)"
	mkdir -p "$DIR"/{root,run,cni,cni-ipam,pod-logs}
	DIR=$(cd "$DIR" && pwd)
	# Searchable (not listable) by others, as a user-namespace pod's root must reach its rootfs,
	# bundle and pod files below it (mktemp -d makes 0700).
	chmod o+x "$DIR"
	# A bridge and subnet of our own (bridge names: 15 characters at most).
	n=$(( $$ % 200 + 20 ))
	BRIDGE=crt$(( $$ % 1000000 ))
	subnet=10.$n.$(( RANDOM % 250 )).0/24
	cat >"$DIR/cni/10-crius-test.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "crius-test-$$",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$subnet" }]],
        "dataDir": "$DIR/cni-ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
	write_registries_conf "$DIR/registries.conf"
	port=$(free_port)
	mon=${CRIUS_MONITOR:-$(dirname "$bin")/crius-monitor}
	{
		echo "$bin"
		# The built-in defaults, not the host's /etc/crius/crius.toml; the flags below override them.
		if { "$bin" config --default >"$DIR/crius.toml" 2>/dev/null || "$bin" config >"$DIR/crius.toml" 2>/dev/null; } &&
			[[ -s $DIR/crius.toml ]]; then
			echo --config; echo "$DIR/crius.toml"
		fi
		echo --listen; echo "$DIR/crius.sock"
		echo --root; echo "$DIR/root"
		echo --runroot; echo "$DIR/run"
		echo --log-level; echo "${CRIUS_LOG_LEVEL:-info}"
		echo --default-runtime; echo "${CRIUS_RUNTIME:-runc}"
		[[ -x $mon ]] && { echo --conmon; echo "$mon"; }
		echo --cni-config-dir; echo "$DIR/cni"
		echo --cni-plugin-dir; echo "${CNI_PLUGIN_DIR:-/usr/lib/cni}"
		echo --registries-conf; echo "$DIR/registries.conf"
		echo --stream-address; echo 127.0.0.1
		echo --stream-port; echo "$port"
		echo --cgroup-parent; echo "/crius-test-$$"
		echo --nri-socket; echo "$DIR/nri.sock"
		# shellcheck disable=SC2086
		for a in ${CRIUS_EXTRA_ARGS:-}; do echo "$a"; done
	} >"$DIR/args"
	echo "$BRIDGE" >"$DIR/bridge"
	echo "/crius-test-$$" >>"$DIR/cgroups"
	# Host state we may change, restored by stop.
	[[ -f $DIR/host.ip_forward ]] || cat /proc/sys/net/ipv4/ip_forward >"$DIR/host.ip_forward"
	[[ -f $DIR/host.cni_chains ]] || (iptables-save -t nat 2>/dev/null | grep -c '^:CNI-' || true) >"$DIR/host.cni_chains"
	[[ -f $DIR/host.netns ]] || (ls /run/netns 2>/dev/null || true) >"$DIR/host.netns"
}

launch() {
	local args=() pid i t
	mapfile -t args <"$DIR/args"
	rm -f "$DIR/crius.sock"
	echo "--- $(date -u +%FT%TZ) ${args[*]}" >>"$DIR/crius.log"
	setsid "${args[@]}" >>"$DIR/crius.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$DIR/crius.pid"
	t=$(( ${CRIUS_START_TIMEOUT:-60} * 10 ))
	for ((i = 0; i < t; i++)); do
		if [[ -S $DIR/crius.sock ]] && crictl_at info >/dev/null 2>&1; then
			write_env
			say "crius running (pid $pid), endpoint $CRIUS_ENDPOINT, log $DIR/crius.log"
			return 0
		fi
		if [[ ! -d /proc/$pid ]] || grep -q '^Z' "/proc/$pid/stat" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			rm -f "$DIR/crius.pid"
			say "crius exited during start-up; last lines of $DIR/crius.log:"
			tail -n 20 "$DIR/crius.log" >&2
			return 1
		fi
		sleep 0.1
	done
	say "crius (pid $pid) did not answer 'crictl info' within ${CRIUS_START_TIMEOUT:-60}s; last lines of $DIR/crius.log:"
	tail -n 20 "$DIR/crius.log" >&2
	return 1
}

stop_daemon() {
	local pid i
	pid=$(daemon_pid) || { rm -f "$DIR/crius.pid"; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
	if [[ -d /proc/$pid ]]; then
		say "crius (pid $pid) did not exit within 10s of SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
	fi
	rm -f "$DIR/crius.pid"
}

# Processes that belong to this instance: their command line names DIR (monitors, the daemon)
# or they live in one of its cgroups (container processes: the instance has its own cgroup parent).
instance_pids() {
	local d cg pat=()
	while IFS= read -r cg; do
		cg=${cg#/}
		[[ -n $cg && $cg != *.slice* ]] && pat+=(-e ":/$cg/" -e ":/$cg\$")
	done < <(sort -u "$DIR/cgroups" 2>/dev/null || true)
	for d in /proc/[0-9]*; do
		[[ ${d#/proc/} == "$$" ]] && continue
		if tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF "$DIR/"; then echo "${d#/proc/}"; continue; fi
		((${#pat[@]})) && grep -q "${pat[@]}" 2>/dev/null <"$d/cgroup" && echo "${d#/proc/}"
	done
	return 0
}

cleanup_leftovers() {
	local pid i m n ids id rt rtroot bridge
	ids=$(cat "$DIR/ids" 2>/dev/null || true)
	# OCI runtime state of the containers we knew about, wherever the runtime keeps it.
	for id in $ids; do
		for rt in runc crun; do
			command -v "$rt" >/dev/null || continue
			for rtroot in "/run/$rt" $(find "$DIR/run" "$DIR/root" -maxdepth 3 -type d -name "$rt" 2>/dev/null); do
				[[ -e $rtroot/$id ]] || continue
				"$rt" --root "$rtroot" kill "$id" KILL >/dev/null 2>&1 || true
				"$rt" --root "$rtroot" delete -f "$id" >/dev/null 2>&1 || true
			done
		done
	done
	for ((i = 0; i < 3; i++)); do
		pid=$(instance_pids)
		[[ -z $pid ]] && break
		say "killing leftover processes of this instance: $(echo $pid)"
		# shellcheck disable=SC2086
		kill -KILL $pid 2>/dev/null || true
		sleep 0.2
	done
	# Mounts under DIR, deepest first (overlays, shm, netns pins, bind mounts).
	for ((i = 0; i < 5; i++)); do
		m=$(awk -v b="$DIR/" 'index($2, b) == 1 {print $2}' /proc/self/mounts | sort -r)
		[[ -z $m ]] && break
		for n in $m; do umount "$n" 2>/dev/null || umount -l "$n" 2>/dev/null || true; done
	done
	# Network namespaces the pods had (read from inspectp before the daemon stopped) and, in CI,
	# any new one under /run/netns.
	for n in $(cat "$DIR/netns" 2>/dev/null || true); do
		[[ -e $n ]] || continue
		umount "$n" 2>/dev/null || umount -l "$n" 2>/dev/null || true
		rm -f "$n"
	done
	if [[ ${CI:-} == true && -f $DIR/host.netns ]]; then
		for n in $(ls /run/netns 2>/dev/null | grep -vxF -f "$DIR/host.netns" || true); do
			umount "/run/netns/$n" 2>/dev/null || true
			rm -f "/run/netns/$n"
		done
	fi
	bridge=$(cat "$DIR/bridge" 2>/dev/null || true)
	[[ -n $bridge ]] && ip link show "$bridge" >/dev/null 2>&1 && ip link delete "$bridge"
	if [[ -f $DIR/host.ip_forward ]]; then cat "$DIR/host.ip_forward" >/proc/sys/net/ipv4/ip_forward; fi
	if [[ -f $DIR/host.cni_chains && $(cat "$DIR/host.cni_chains") == 0 ]] && ! pgrep -x containerd >/dev/null; then
		# portmap's chains did not exist before we started and no other runtime uses them.
		iptables-save -t nat | awk '/^-A / && / -j CNI-/' | sed 's/^-A /-D /' |
			while read -r rule; do eval "iptables -t nat $rule" 2>/dev/null || true; done
		for n in $(iptables-save -t nat | awk -F'[: ]' '/^:CNI-/ {print $2}'); do iptables -t nat -F "$n" 2>/dev/null || true; done
		for n in $(iptables-save -t nat | awk -F'[: ]' '/^:CNI-/ {print $2}'); do iptables -t nat -X "$n" 2>/dev/null || true; done
	fi
	# Empty cgroups of our containers and pods.
	for n in $(sort -u "$DIR/cgroups" 2>/dev/null || true); do
		n=${n#/}
		[[ -n $n && $n != *..* && $n != *.slice* ]] || continue
		for m in /sys/fs/cgroup/*/"$n" /sys/fs/cgroup/"$n"; do
			[[ -d $m ]] && find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true
		done
	done
}

# Before stopping: remember what the daemon knows (IDs, netns paths, cgroups) for the sweep.
record_state() {
	local pods ctrs
	pods=$(crictl_at pods -q --no-trunc 2>/dev/null || true)
	ctrs=$(crictl_at ps -aq --no-trunc 2>/dev/null || true)
	printf '%s\n' $pods $ctrs >>"$DIR/ids"
	if [[ -n $pods ]]; then
		# shellcheck disable=SC2086
		crictl_at inspectp -o json $pods 2>/dev/null | grep -o '"/[^"]*netns[^"]*"' | tr -d '"' | sort -u >>"$DIR/netns" || true
		# shellcheck disable=SC2086
		crictl_at inspectp -o json $pods 2>/dev/null | grep -oE '"(cgroupsPath|cgroup_parent|cgroupParent)": *"[^"]+"' |
			sed 's/.*: *"//; s/"$//' | grep -v : | sort -u >>"$DIR/cgroups" || true
	fi
	if [[ -n $ctrs ]]; then
		# shellcheck disable=SC2086
		crictl_at inspect -o json $ctrs 2>/dev/null | grep -oE '"cgroupsPath": *"[^"]+"' |
			sed 's/.*: *"//; s/"$//' | grep -v : | sort -u >>"$DIR/cgroups" || true
	fi
}

cmd_stop() {
	[[ -d $DIR ]] || { say "no instance in $DIR"; return 0; }
	DIR=$(cd "$DIR" && pwd)
	if daemon_pid >/dev/null && [[ -S $DIR/crius.sock ]]; then
		record_state
		crictl_at rm -af >/dev/null 2>&1 || true
		crictl_at rmp -af >/dev/null 2>&1 || true
		record_state
	fi
	stop_daemon
	cleanup_leftovers
	local left
	left=$(awk -v b="$DIR/" 'index($2, b) == 1' /proc/self/mounts | wc -l)
	say "stopped; leftovers: $left mounts, $(instance_pids | wc -l) processes"
	if [[ ${CRIUS_KEEP_DIR:-0} != 1 && $left == 0 && -f $DIR/args ]]; then
		# Keep the daemon log next to the directory for post-mortems.
		[[ -f $DIR/crius.log ]] && cp "$DIR/crius.log" "$DIR.log" 2>/dev/null || true
		rm -rf "$DIR"
	fi
}

usage() { echo "usage: $0 start|stop|restart|status DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1 DIR=$2
CRICTL=$(ensure_crictl)
case $cmd in
start)
	need_root
	if [[ -f $DIR/env ]] && daemon_pid >/dev/null; then say "already running"; exit 0; fi
	prepare
	CRIUS_ENDPOINT=unix://$DIR/crius.sock
	launch
	;;
restart)
	need_root
	DIR=$(cd "$DIR" && pwd)
	CRIUS_ENDPOINT=unix://$DIR/crius.sock
	BRIDGE=$(cat "$DIR/bridge")
	stop_daemon
	launch
	;;
stop)
	need_root
	CRIUS_ENDPOINT=unix://$DIR/crius.sock
	cmd_stop
	;;
status)
	if pid=$(daemon_pid); then echo "running (pid $pid), endpoint unix://$DIR/crius.sock"; else echo "not running"; exit 3; fi
	;;
*) usage ;;
esac
