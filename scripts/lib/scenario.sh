# scenario.sh: the harness the crictl scenarios share (source after lib/common.sh, with WORK,
# CRICTL and ENDPOINT set or to be set). Each check prints PASS/FAIL/SKIP; the closing line
# "N passed, M failed" is printed last, after the teardown, because CI reads it.
#
# A scenario defines scenario_teardown (its own processes: event streams, port-forwards) and
# sets POD when it has one; scenario_runtime starts the registry and a private crius when no
# --endpoint was given.
# shellcheck shell=bash

INSTANCE= STARTED_REGISTRY=0 POD=
PASS=0 FAIL=0 FINISHED=0

scenario_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if declare -F scenario_teardown >/dev/null; then scenario_teardown || true; fi
	if [[ -n $POD ]]; then
		cri stopp "$POD" >/dev/null 2>&1 || true
		cri rmp -f "$POD" >/dev/null 2>&1 || true
	fi
	if [[ -n $INSTANCE ]]; then bash "$REPO/scripts/crius-instance.sh" stop "$INSTANCE" >&2 || rc=1; fi
	((STARTED_REGISTRY)) && "$TESTENV/registry.sh" stop >/dev/null
	rm -rf "$WORK"
	if ((!FINISHED)); then
		echo "FAIL: the scenario stopped early (exit $rc)"
		FAIL=$((FAIL + 1)) rc=1
	fi
	echo "$PASS passed, $FAIL failed"
	exit "$rc"
}
# finish: end the scenario (the count is printed by scenario_cleanup, after the teardown).
finish() { FINISHED=1; ((FAIL == 0)) && exit 0; exit 1; }
trap scenario_cleanup EXIT
trap 'exit 130' INT TERM

cri() { timeout 120 "$CRICTL" --config "$WORK/crictl.yaml" --runtime-endpoint "$ENDPOINT" --image-endpoint "$ENDPOINT" --timeout 30s "$@"; }
pass() { PASS=$((PASS + 1)); echo "PASS: $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
skip() { echo "SKIP: $*"; }
check() { # check "description" command...: PASS when the command succeeds (its stdout dropped)
	local d=$1; shift
	if "$@" >/dev/null 2>"$WORK/check.err"; then pass "$d"; else fail "$d: $(tail -c 300 "$WORK/check.err")"; fi
}
state_of() {
	cri inspect -o json "$1" 2>/dev/null | python3 -c 'import json,sys
try: print(json.load(sys.stdin)["status"]["state"])
except Exception: print("")'
}
# wait_state ID STATE SECONDS: polls ContainerStatus until the state is reached.
wait_state() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[[ $(state_of "$1") == "$2" ]] && return 0
		sleep 0.1
	done
	return 1
}

# scenario_runtime NAME: the registry and its images; a private crius unless ENDPOINT is set
# (then RESTART_CMD restarts it); writes WORK/crictl.yaml and says what it runs against.
scenario_runtime() {
	if [[ -n $TESTENV ]] && ! registry_up; then "$TESTENV/registry.sh" start >&2; STARTED_REGISTRY=1; fi
	if [[ -n $TESTENV ]]; then flock /tmp/crius-testenv.lock "$TESTENV/images.sh" >"$WORK/images.log" 2>&1 || die "images.sh failed: $(tail -3 "$WORK/images.log")"; fi
	if [[ -z $ENDPOINT ]]; then
		INSTANCE=$(mktemp -d /tmp/crius-scenario-instance.XXXXXX)
		bash "$REPO/scripts/crius-instance.sh" start "$INSTANCE" >&2 || { fail "crius starts and answers the CRI"; finish; }
		# shellcheck disable=SC1091
		source "$INSTANCE/env"
		ENDPOINT=$CRIUS_ENDPOINT
		RESTART_CMD="bash $REPO/scripts/crius-instance.sh restart $INSTANCE"
	fi
	printf 'runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 30\n' "$ENDPOINT" "$ENDPOINT" >"$WORK/crictl.yaml"
	echo "$1 scenario against $ENDPOINT ($("$CRICTL" --version))"
}
