#!/usr/bin/env bash
# stop.sh: stop the crius daemon started by scripts/install.sh.
#
#   sudo bash scripts/stop.sh [--purge] [--test-registry]
#     (default)         stop the daemon only: containers keep running under their monitors
#                       and are picked up again by the next start (as after an upgrade)
#     --purge           first stop and remove every pod and container through the CRI, and
#                       after the daemon is gone unmount what is left under /run/crius (the
#                       namespace pin directories)
#     --test-registry   also stop the offline test registry (its images stay on disk)
set -euo pipefail
_tag=stop
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

PURGE=0 REG=0
while (($#)); do
	case $1 in
	--purge) PURGE=1 ;;
	--test-registry) REG=1 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
need_root
PIDFILE=/run/crius-daemon.pid
SOCK=/run/crius/crius.sock
CRICTL=$(command -v crictl || echo /usr/local/bin/crictl)

if pid=$(cat "$PIDFILE" 2>/dev/null) && [[ -d /proc/$pid ]]; then
	if ((PURGE)) && [[ -S $SOCK ]]; then
		say "removing all pods and containers"
		"$CRICTL" --runtime-endpoint "unix://$SOCK" --timeout 30s rm -af >/dev/null 2>&1 || true
		"$CRICTL" --runtime-endpoint "unix://$SOCK" --timeout 30s rmp -af >/dev/null 2>&1 || true
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 150; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
	if [[ -d /proc/$pid ]]; then
		say "crius (pid $pid) still running 15s after SIGTERM: SIGKILL"
		kill -KILL "$pid"
	fi
	say "crius (pid $pid) stopped"
else
	say "crius is not running (no live pid in $PIDFILE)"
fi
rm -f "$PIDFILE"
if ((PURGE)); then
	for m in $(awk 'index($2, "/run/crius/") == 1 {print $2}' /proc/self/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" || true
	done
fi
if ((REG)) && [[ -n $TESTENV ]]; then "$TESTENV/registry.sh" stop; fi
