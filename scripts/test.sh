#!/usr/bin/env bash
# test.sh: every test crius has, in order, as root on a Debian host (what CI runs):
#
#   1. host     scripts/host-setup.sh (apt packages, the crun cgroup fix)
#   2. tools    crictl + critest from the Go module proxy (cached in /var/cache/crius-ci)
#   3. images   the offline test registry on 127.0.0.1:5000 + its images (../shared/testenv)
#   4. build    cargo build --workspace --all-targets
#   5. test     cargo test --workspace --no-fail-fast (unit + integration tests, real runc/CNI/registry)
#   6. scenario scripts/crictl-scenario.sh against a private crius instance (debug build)
#      streaming scripts/streaming-scenario.sh: exec -it/-i, attach, port-forward with crictl over
#               SPDY and WebSocket, against another private instance
#   7. critest  scripts/conformance.sh: the CRI conformance gate (docs/CONFORMANCE.md)
#   8. leaks    processes, mounts, netns, links and top-level cgroups the run left behind
#               (removed, and reported as a failure)
#
# Stages 6 (scenario, streaming) and 7 are skipped, loudly, only while the workspace has no `crius` binary.
# Options: --only STAGE[,STAGE] (e.g. --only build,test), --skip STAGE[,STAGE].
# Environment: TEST_DEADLINE_MIN (default 80): the whole run is bounded by it, each stage gets
# what is left; CRIUS_LEAK_CHECK=1|0 (default: 1 in CI, 0 elsewhere: on a shared machine other
# people's containers would look like leaks).
# Exit status: 0 when every stage that ran passed.
# The whole script is one block, read before it runs: editing the file during a run is safe.
{
set -euo pipefail
_tag=test
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ONLY= SKIP=
while (($#)); do
	case $1 in
	--only) ONLY=,$2,; shift ;;
	--skip) SKIP=,$2,; shift ;;
	-h | --help) sed -n '2,/^# The whole script/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
need_root
cd "$REPO"
T_START=$(now_ms)
DEADLINE_MS=$((T_START + ${TEST_DEADLINE_MIN:-80} * 60000))
LEAK_CHECK=${CRIUS_LEAK_CHECK:-$([[ ${CI:-} == true ]] && echo 1 || echo 0)}
LOGDIR=$(mktemp -d /tmp/crius-test.XXXXXX)
STARTED_REGISTRY=0 CHILD= FAILED=0
SUMMARY=()

wanted() { [[ ( -z $ONLY || $ONLY == *",$1,"* ) && $SKIP != *",$1,"* ]]; }
remaining_s() { echo $(((DEADLINE_MS - $(now_ms)) / 1000)); }

# stage NAME CAP_MIN COMMAND...: runs the command in the background (so that a signal reaches
# it), bounded by min(CAP, time left), and records the result for the summary.
stage() {
	local name=$1 cap=$(($2 * 60)) t0 rc=0 left secs
	shift 2
	if ! wanted "$name"; then SUMMARY+=("$(printf '%-9s %-7s' "$name" "-")"); return 0; fi
	left=$(remaining_s)
	((left < cap)) && cap=$left
	if ((cap <= 0)); then
		SUMMARY+=("$(printf '%-9s %-7s %s' "$name" FAIL "no time left (TEST_DEADLINE_MIN=${TEST_DEADLINE_MIN:-80})")")
		FAILED=1
		return 1
	fi
	echo
	echo "=== stage $name ($(date -u +%T), bound ${cap}s) ==="
	t0=$(now_ms)
	# timeout signals its whole process group; bash -c so that exported functions run too.
	timeout -s TERM -k 30 "$cap" bash -c '"$@"' "$name" "$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=
	secs=$(fmt_secs $(($(now_ms) - t0)))
	if ((rc == 0)); then
		SUMMARY+=("$(printf '%-9s %-7s %8s  %s' "$name" PASS "$secs" "${NOTE:-}")")
	else
		[[ $rc == 124 ]] && NOTE="timed out after ${cap}s; ${NOTE:-}"
		SUMMARY+=("$(printf '%-9s %-7s %8s  exit %s %s' "$name" FAIL "$secs" "$rc" "${NOTE:-}")")
		FAILED=1
	fi
	NOTE=
	return "$rc"
}
skipped() { SUMMARY+=("$(printf '%-9s %-7s %8s  %s' "$1" SKIP - "$2")"); }

# --- leak detection: a snapshot after host set-up, compared at the end ------------------------
snapshot() {
	awk '{print $2}' /proc/self/mounts | sort >"$LOGDIR/mounts.before"
	(ls /run/netns 2>/dev/null || true) | sort >"$LOGDIR/netns.before"
	ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$LOGDIR/links.before"
	ls /proc | grep -E '^[0-9]+$' | sort >"$LOGDIR/pids.before"
	cgroup_dirs >"$LOGDIR/cgroups.before"
}
# The top-level cgroups of every hierarchy (/sys/fs/cgroup/<hierarchy>/<name>).
cgroup_dirs() { find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d 2>/dev/null | sort; }
# Processes started during the run that are in a container (another mount namespace) or are
# runtime pieces.
new_runtime_pids() {
	local p comm mnt self
	self=$(readlink /proc/self/ns/mnt)
	for p in $(ls /proc | grep -E '^[0-9]+$' | sort | comm -13 "$LOGDIR/pids.before" -); do
		[[ $p == "$$" ]] && continue
		comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
		mnt=$(readlink "/proc/$p/ns/mnt" 2>/dev/null) || continue
		if [[ $mnt != "$self" || $comm =~ ^(crius|crius-monitor|conmon|runc|crun|pause|containerd-shim.*)$ ]]; then
			echo "$p"
		fi
	done
}
leak_check() {
	local pids mounts netns links m n bad=0
	pids=$(new_runtime_pids)
	if [[ -n $pids ]]; then
		echo "LEAK: processes: $(for p in $pids; do printf '%s(%s) ' "$p" "$(cat /proc/$p/comm 2>/dev/null)"; done)"
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
		bad=1
	fi
	mounts=$(awk '{print $2}' /proc/self/mounts | sort | comm -13 "$LOGDIR/mounts.before" - | sort -r)
	if [[ -n $mounts ]]; then
		echo "LEAK: mounts: $(echo $mounts)"
		for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
		bad=1
	fi
	netns=$( (ls /run/netns 2>/dev/null || true) | sort | comm -13 "$LOGDIR/netns.before" -)
	if [[ -n $netns ]]; then
		echo "LEAK: network namespaces: $(echo $netns)"
		for n in $netns; do umount "/run/netns/$n" 2>/dev/null; rm -f "/run/netns/$n"; done
		bad=1
	fi
	links=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | comm -13 "$LOGDIR/links.before" -)
	if [[ -n $links ]]; then
		echo "LEAK: network links: $(echo $links)"
		for n in $links; do ip link delete "$n" 2>/dev/null || true; done
		bad=1
	fi
	n=$(cgroup_dirs | comm -13 "$LOGDIR/cgroups.before" -)
	if [[ -n $n ]]; then
		echo "LEAK: cgroups: $(echo "$n" | sed 's|^/sys/fs/cgroup/||' | tr '\n' ' ')"
		for m in $n; do find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
		bad=1
	fi
	((bad == 0)) && echo "no processes, mounts, netns, links or cgroups left behind"
	return "$bad"
}

images() {
	set -o pipefail
	[[ -n $TESTENV && -x $TESTENV/images.sh ]] || { echo "test image fixture not found beside the repo (../shared/testenv)"; return 1; }
	flock /tmp/crius-testenv.lock "$TESTENV/images.sh" | tail -n 3
}
cargo_test() {
	set -o pipefail
	local rc=0
	cargo test --workspace --no-fail-fast 2>&1 | tee "$LOGDIR/cargo-test.log" || rc=$?
	awk '/^test result:/ {p += $4; f += $6; i += $8} END {printf "cargo test: %d passed, %d failed, %d ignored\n", p, f, i}' "$LOGDIR/cargo-test.log"
	return "$rc"
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $CHILD ]]; then
		kill -TERM "$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
	fi
	# Instances a killed stage could not stop itself.
	for d in /tmp/crius-scenario-instance.* /tmp/crius-conformance-instance.*; do
		[[ -f $d/args && $d -nt $LOGDIR ]] || continue
		bash "$REPO/scripts/crius-instance.sh" stop "$d" >/dev/null 2>&1 || true
	done
	if ((STARTED_REGISTRY)); then "$TESTENV/registry.sh" stop >/dev/null 2>&1 || true; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "test.sh: interrupted" >&2; exit 130' INT TERM

echo "crius test run: $(git log -1 --format='%h %s' 2>/dev/null || echo 'not a git checkout'), $(date -u +%FT%TZ), $(nproc) cores, CI=${CI:-}"

export LOGDIR TESTENV
export -f images cargo_test leak_check new_runtime_pids cgroup_dirs

# 1-3: the machine
stage host 15 bash scripts/host-setup.sh || true
wanted host && apt_install python3 >/dev/null 2>&1 || true
snapshot
stage tools 10 bash -c "source scripts/lib/common.sh; ensure_crictl && ensure_critest" || true
if [[ -n $TESTENV && -x $TESTENV/registry.sh ]] && ! registry_up && wanted images; then
	"$TESTENV/registry.sh" start && STARTED_REGISTRY=1
fi
stage images 10 images || true

# 4-5: cargo
stage build 40 cargo build --workspace --all-targets || true
NOTE=
stage test 30 cargo_test || true
if wanted test && [[ -f $LOGDIR/cargo-test.log ]]; then
	SUMMARY[-1]+=$(awk '/^test result:/ {p += $4; f += $6; i += $8} END {printf "%d passed, %d failed, %d ignored", p, f, i}' "$LOGDIR/cargo-test.log")
fi

# 6-7: the daemon
CRIUS_BIN=$TARGET_DIR/debug/crius
export CRIUS_BIN
if [[ ! -x $CRIUS_BIN ]]; then
	echo
	echo "###############################################################################"
	echo "### $CRIUS_BIN does not exist: crictl scenarios and critest NOT RUN"
	echo "###############################################################################"
	skipped scenario "no crius binary"
	skipped streaming "no crius binary"
	skipped critest "no crius binary"
else
	stage scenario 10 bash scripts/crictl-scenario.sh || true
	stage streaming 10 bash scripts/streaming-scenario.sh || true
	stage critest 45 bash scripts/conformance.sh --results "$LOGDIR/critest" || true
fi

# 8: leaks
if ((LEAK_CHECK)); then stage leaks 5 leak_check || true; else skipped leaks "not in CI (CRIUS_LEAK_CHECK=1 to check)"; fi

echo
echo "=== summary ($(fmt_secs $(($(now_ms) - T_START))) in all; logs in $LOGDIR) ==="
printf '%s\n' "${SUMMARY[@]}"
if ((FAILED)); then echo "RESULT: FAIL"; exit 1; fi
echo "RESULT: PASS"
exit
}
