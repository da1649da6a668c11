#!/usr/bin/env bash
# crictl-scenario.sh: an end-to-end walk through the CRI with crictl, the way an operator sees it.
#
#   crictl-scenario.sh                      start a private crius (scripts/crius-instance.sh),
#                                           run the scenario, stop it
#   crictl-scenario.sh --endpoint URL [--restart-cmd CMD]
#                                           run against a runtime that is already up; CMD
#                                           restarts its daemon (without it the restart
#                                           check is skipped)
#
# Checks (each prints PASS/FAIL/SKIP): a pod with two busybox containers; one exits 0 and shows
# CONTAINER_EXITED / Completed / 0; `crictl logs` has both containers' stdout and stderr;
# `crictl exec -s` returns the command's output and its exit code; the daemon restarted with a
# container running: still running, same ID and pid, then stoppable; the stopped container shows
# 137 or 143 with reason Error; `crictl events` streams CREATED, STARTED, STOPPED, DELETED in
# order; removal leaves no pod. The last line is "N passed, M failed" alone.
# The test images come from the testenv registry (started here when it is not up).
# The whole script is one block, read before it runs: editing the file during a run is safe.
{
set -euo pipefail
_tag=crictl-scenario
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ENDPOINT= RESTART_CMD=
while (($#)); do
	case $1 in
	--endpoint) ENDPOINT=$2; shift ;;
	--restart-cmd) RESTART_CMD=$2; shift ;;
	-h | --help) sed -n '2,/^# The whole script/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
need_root
CRICTL=$(ensure_crictl)
export CRICTL
WORK=$(mktemp -d /tmp/crius-scenario.XXXXXX)
EVENTS_PID=
# shellcheck source=lib/scenario.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/scenario.sh"
scenario_teardown() {
	[[ -n $EVENTS_PID ]] && kill "$EVENTS_PID" 2>/dev/null && wait "$EVENTS_PID" 2>/dev/null
	return 0
}
# jget FILE EXPR: a field of a JSON file (python expression on `d`), empty when missing.
jget() { python3 -c 'import json,sys
try:
    d = json.load(open(sys.argv[1])); v = eval(sys.argv[2])
except Exception:
    v = ""
print("" if v is None else v)' "$1" "$2"; }
inspect_to() { cri inspect -o json "$1" >"$WORK/$2.json" 2>"$WORK/$2.err" || : >"$WORK/$2.json"; }

# --- the runtime -------------------------------------------------------------
scenario_runtime crictl

# --- specs -------------------------------------------------------------------
mkdir -p "$WORK/logs"
cat >"$WORK/pod.json" <<EOF
{"metadata": {"name": "scenario", "namespace": "crius-scenario", "uid": "scenario-$$", "attempt": 1},
 "log_directory": "$WORK/logs", "linux": {}}
EOF
cat >"$WORK/a.json" <<EOF
{"metadata": {"name": "done"}, "image": {"image": "$BUSYBOX_IMAGE"},
 "command": ["sh", "-c", "echo out-of-done; echo err-of-done >&2"], "log_path": "done.log", "linux": {}}
EOF
cat >"$WORK/b.json" <<EOF
{"metadata": {"name": "sleeper"}, "image": {"image": "$BUSYBOX_IMAGE"},
 "command": ["sh", "-c", "echo sleeper-started; exec sleep 3600"], "log_path": "sleeper.log", "linux": {}}
EOF

# events: streamed from before the first container exists
start_events() {
	"$CRICTL" --config "$WORK/crictl.yaml" --runtime-endpoint "$ENDPOINT" --timeout 30s events -o json >"$WORK/$1" 2>"$WORK/$1.err" &
	EVENTS_PID=$!
}
stop_events() {
	[[ -n $EVENTS_PID ]] || return 0
	kill "$EVENTS_PID" 2>/dev/null || true
	wait "$EVENTS_PID" 2>/dev/null || true
	EVENTS_PID=
}
# events_order FILE ID TYPE...: the events of container ID include TYPE... in this order.
events_order() {
	python3 - "$@" <<'EOF'
import json, sys
path, cid, want = sys.argv[1], sys.argv[2], sys.argv[3:]
text, dec, pos, seen = open(path).read(), json.JSONDecoder(), 0, []
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    try:
        ev, pos = dec.raw_decode(text, pos)
    except ValueError:
        break
    if ev.get("containerId") == cid:
        seen.append(ev.get("containerEventType", "").replace("CONTAINER_", "").replace("_EVENT", ""))
it = iter(seen)
ok = all(w in it for w in want)
print(" ".join(seen) or "none")
sys.exit(0 if ok else 1)
EOF
}
start_events events1.json

check "pull $BUSYBOX_IMAGE" cri pull "$BUSYBOX_IMAGE"
if POD=$(cri runp "$WORK/pod.json" 2>"$WORK/runp.err"); then pass "runp: pod $POD ready"; else
	fail "runp: $(cat "$WORK/runp.err")"
	finish
fi
[[ $(cri inspectp -o json "$POD" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["state"])') == SANDBOX_READY ]] &&
	pass "pod state SANDBOX_READY" || fail "pod state SANDBOX_READY"
A= B=
if A=$(cri create "$POD" "$WORK/a.json" "$WORK/pod.json" 2>"$WORK/a.err") && B=$(cri create "$POD" "$WORK/b.json" "$WORK/pod.json" 2>"$WORK/b.err"); then
	pass "create two containers"
else
	fail "create: $(cat "$WORK/a.err" "$WORK/b.err" 2>/dev/null)"
	finish
fi
[[ $(state_of "$A") == CONTAINER_CREATED ]] && pass "created container shows CONTAINER_CREATED" || fail "created container state: $(state_of "$A")"
check "start both containers" cri start "$A" "$B"

# the container that exits 0
if wait_state "$A" CONTAINER_EXITED 30; then
	inspect_to "$A" a
	code=$(jget "$WORK/a.json" 'd["status"]["exitCode"]') reason=$(jget "$WORK/a.json" 'd["status"]["reason"]')
	[[ $code == 0 && $reason == Completed ]] && pass "exited container: exit code 0, reason Completed" ||
		fail "exited container: exit code '$code', reason '$reason' (want 0, Completed)"
	[[ -n $(jget "$WORK/a.json" 'd["status"]["finishedAt"]') && $(jget "$WORK/a.json" 'd["status"]["finishedAt"]') != 0 ]] &&
		pass "exited container has finishedAt" || fail "exited container has no finishedAt"
else
	fail "container that exits 0 reaches CONTAINER_EXITED within 30s (state: $(state_of "$A"))"
fi
logs=$(cri logs "$A" 2>&1 || true)
[[ $logs == *out-of-done* && $logs == *err-of-done* ]] && pass "crictl logs: stdout and stderr of the exited container" ||
	fail "crictl logs of the exited container: '$logs'"
if [[ -s $WORK/logs/done.log ]] && grep -qE '^[0-9T:.+Z-]+ stdout F out-of-done$' "$WORK/logs/done.log"; then
	pass "CRI log file format (<time> stdout F <line>) at the pod's log_path"
else
	fail "CRI log file $WORK/logs/done.log: $(head -c 300 "$WORK/logs/done.log" 2>/dev/null)"
fi

# the running one: exec
wait_state "$B" CONTAINER_RUNNING 30 && pass "second container CONTAINER_RUNNING" || fail "second container state: $(state_of "$B")"
out=$(cri exec -s "$B" echo exec-ok 2>"$WORK/exec.err") && [[ $out == exec-ok ]] && pass "exec -s: output and exit code 0" ||
	fail "exec -s echo: '$out' $(cat "$WORK/exec.err")"
out=$(cri exec -s "$B" sh -c 'echo to-stdout; echo to-stderr >&2' 2>&1) && [[ $out == *to-stdout* && $out == *to-stderr* ]] &&
	pass "exec -s: stdout and stderr returned" || fail "exec -s output: '$out'"
# crictl 1.37 exits 1 for any non-zero code and names the code in its error message.
rc=0; cri exec -s "$B" sh -c 'exit 7' >/dev/null 2>"$WORK/exec.err" || rc=$?
[[ $rc != 0 ]] && grep -q "exited with 7" "$WORK/exec.err" && pass "exec -s: exit code 7 returned" ||
	fail "exec -s exit code: crictl rc $rc, $(tail -c 300 "$WORK/exec.err")"
logs=$(cri logs "$B" 2>&1 || true)
[[ $logs == *sleeper-started* ]] && pass "crictl logs of the running container" || fail "crictl logs of the running container: '$logs'"
stop_events
order=$(events_order "$WORK/events1.json" "$A" CREATED STARTED STOPPED) &&
	pass "events: CREATED, STARTED, STOPPED of the exited container in order ($order)" ||
	fail "events of the exited container: $order; $(tail -c 300 "$WORK/events1.json.err")"

# daemon restart with a container running
inspect_to "$B" before
pid_before=$(jget "$WORK/before.json" 'd["info"]["pid"]')
if [[ -n $RESTART_CMD ]]; then
	if bash -c "$RESTART_CMD" >"$WORK/restart.log" 2>&1; then
		pass "daemon restarted"
		inspect_to "$B" after
		[[ $(jget "$WORK/after.json" 'd["status"]["state"]') == CONTAINER_RUNNING && $(jget "$WORK/after.json" 'd["status"]["id"]') == "$B" ]] &&
			pass "after restart: same container ID, still CONTAINER_RUNNING" ||
			fail "after restart: $(jget "$WORK/after.json" 'd["status"]["id"]') $(jget "$WORK/after.json" 'd["status"]["state"]') $(cat "$WORK/after.err")"
		pid_after=$(jget "$WORK/after.json" 'd["info"]["pid"]')
		if [[ -n $pid_before ]]; then
			[[ $pid_after == "$pid_before" && -d /proc/$pid_before ]] && pass "after restart: same process (pid $pid_before)" ||
				fail "after restart: pid $pid_before -> '$pid_after'"
		fi
		inspect_to "$A" a2
		[[ $(jget "$WORK/a2.json" 'd["status"]["exitCode"]') == 0 && $(jget "$WORK/a2.json" 'd["status"]["reason"]') == Completed ]] &&
			pass "after restart: the exited container still shows 0 / Completed" ||
			fail "after restart: exited container $(jget "$WORK/a2.json" 'd["status"]["state"]') $(jget "$WORK/a2.json" 'd["status"]["exitCode"]') $(jget "$WORK/a2.json" 'd["status"]["reason"]')"
	else
		fail "daemon restart: $(tail -5 "$WORK/restart.log")"
	fi
else
	skip "daemon restart (no --restart-cmd for this endpoint)"
fi
start_events events2.json

# stop the running one: SIGTERM to `sleep` as PID 1 does nothing, so SIGKILL after the timeout
check "stop the running container (timeout 2s)" cri stop --timeout 2 "$B"
inspect_to "$B" b
code=$(jget "$WORK/b.json" 'd["status"]["exitCode"]') reason=$(jget "$WORK/b.json" 'd["status"]["reason"]') state=$(jget "$WORK/b.json" 'd["status"]["state"]')
[[ $state == CONTAINER_EXITED && ($code == 137 || $code == 143) && $reason == Error ]] &&
	pass "stopped container: $state, exit code $code, reason Error" ||
	fail "stopped container: state '$state', exit code '$code', reason '$reason' (want EXITED, 137/143, Error)"
logs=$(cri logs "$B" 2>&1 || true)
[[ $logs == *sleeper-started* ]] && pass "crictl logs of the stopped container" || fail "crictl logs of the stopped container: '$logs'"

# removal
check "rm both containers" cri rm "$A" "$B"
[[ -z $(cri ps -a -q --pod "$POD" 2>/dev/null) ]] && pass "no container left in the pod" || fail "containers left: $(cri ps -a -q --pod "$POD")"
check "stopp" cri stopp "$POD"
check "rmp" cri rmp "$POD"
[[ -z $(cri pods -q --id "$POD" 2>/dev/null) ]] && { pass "pod gone from ListPodSandbox"; POD=; } || fail "pod still listed"
stop_events
order=$(events_order "$WORK/events2.json" "$B" STOPPED DELETED) &&
	pass "events: STOPPED, DELETED of the stopped container in order ($order)" ||
	fail "events of the stopped container: $order; $(tail -c 300 "$WORK/events2.json.err")"

finish
}
