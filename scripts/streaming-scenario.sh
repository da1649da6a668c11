#!/usr/bin/env bash
# streaming-scenario.sh: exec, attach and port-forward through crius's streaming server with the
# real crictl, over both transports (SPDY/3.1 and WebSocket).
#
#   streaming-scenario.sh                   start a private crius (scripts/crius-instance.sh),
#                                           run the scenario, stop it
#   streaming-scenario.sh --endpoint URL    run against a runtime that is already up
#
# Checks (each prints PASS/FAIL), for --transport spdy and websocket: `crictl exec -it` under a
# pty sees a terminal and ends with its command; `crictl exec -i` passes piped stdin through and
# returns the exit code; `crictl attach -it` to a tty+stdin `sh` runs what is typed and ends with
# `exit`; `crictl port-forward` to a busybox httpd serves a file to an HTTP GET; an exec URL
# upgrades once (101) and is refused the second time (4xx); exec into a stopped container fails
# with FailedPrecondition. The last line is "N passed, M failed" alone.
# Environment: PTY_TIMEOUT (seconds, default 20): how long a crictl on a pty may run.
# The test images come from the testenv registry (started here when it is not up).
# The whole script is one block, read before it runs: editing the file during a run is safe.
{
set -euo pipefail
_tag=streaming-scenario
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ENDPOINT=
while (($#)); do
	case $1 in
	--endpoint) ENDPOINT=$2; shift ;;
	-h | --help) sed -n '2,/^# The whole script/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
need_root
CRICTL=$(ensure_crictl)
export CRICTL
WORK=$(mktemp -d /tmp/crius-streaming.XXXXXX)
PF_PID= RESTART_CMD=
# shellcheck source=lib/scenario.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/scenario.sh"
scenario_teardown() {
	if [[ -n $PF_PID ]]; then kill "$PF_PID" 2>/dev/null || true; wait "$PF_PID" 2>/dev/null || true; fi
}
oneline() { tr -d '\r' <"$1" | tr '\n' ' ' | tail -c 400; }

# in_pty [--send TEXT --until TEXT] -- COMMAND...: runs COMMAND on a new pseudo-terminal and
# prints everything it wrote there. With --send, TEXT is typed (again every 2s, as long as the
# other side may not be listening yet) until --until's TEXT shows up in the output; then "exit"
# is typed. Exits with the command's exit status, 124 (after killing it) when it did not end
# within PTY_TIMEOUT seconds (default 20).
cat >"$WORK/in_pty.py" <<'EOF'
import os, pty, select, sys, time
args, send, until = sys.argv[1:], None, None
while args and args[0] != "--":
    if args[0] == "--send": send = args[1].encode().decode("unicode_escape").encode()
    elif args[0] == "--until": until = args[1].encode()
    args = args[2:]
args = args[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(args[0], args)
out, last_send, done = b"", 0.0, until is None
deadline = time.monotonic() + float(os.environ.get("PTY_TIMEOUT", "20"))
while time.monotonic() < deadline:
    if not done and time.monotonic() - last_send > 2:
        os.write(fd, send); last_send = time.monotonic()
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try: chunk = os.read(fd, 4096)
        except OSError: chunk = b""
        if not chunk: break
        out += chunk
        if not done and until in out:
            done = True
            os.write(fd, b"exit\n")
else:
    os.kill(pid, 9)
    sys.stdout.buffer.write(out); sys.exit(124)
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status) & 0xff)
EOF
in_pty() { python3 "$WORK/in_pty.py" "$@"; }

# --- the runtime -------------------------------------------------------------
scenario_runtime streaming
CRI=("$CRICTL" --config "$WORK/crictl.yaml" --runtime-endpoint "$ENDPOINT" --image-endpoint "$ENDPOINT" --timeout 30s)

# --- specs -------------------------------------------------------------------
mkdir -p "$WORK/logs"
cat >"$WORK/pod.json" <<EOF
{"metadata": {"name": "streaming", "namespace": "crius-streaming", "uid": "streaming-$$", "attempt": 1},
 "log_directory": "$WORK/logs", "linux": {}}
EOF
cat >"$WORK/web.json" <<EOF
{"metadata": {"name": "web"}, "image": {"image": "$BUSYBOX_IMAGE"},
 "command": ["sh", "-c", "mkdir -p /www; exec httpd -f -p 80 -h /www"], "log_path": "web.log", "linux": {}}
EOF
cat >"$WORK/shell.json" <<EOF
{"metadata": {"name": "shell"}, "image": {"image": "$BUSYBOX_IMAGE"}, "command": ["sh"],
 "tty": true, "stdin": true, "log_path": "shell.log", "linux": {}}
EOF
cat >"$WORK/done.json" <<EOF
{"metadata": {"name": "done"}, "image": {"image": "$BUSYBOX_IMAGE"}, "command": ["true"],
 "log_path": "done.log", "linux": {}}
EOF

check "pull $BUSYBOX_IMAGE" cri pull "$BUSYBOX_IMAGE"
if POD=$(cri runp "$WORK/pod.json" 2>"$WORK/runp.err"); then pass "runp: pod $POD ready"; else
	fail "runp: $(cat "$WORK/runp.err")"
	finish
fi
WEB= DONE=
if WEB=$(cri create "$POD" "$WORK/web.json" "$WORK/pod.json" 2>"$WORK/c.err") &&
	DONE=$(cri create "$POD" "$WORK/done.json" "$WORK/pod.json" 2>"$WORK/c.err") &&
	cri start "$WEB" "$DONE" >/dev/null 2>"$WORK/c.err" && wait_state "$WEB" CONTAINER_RUNNING 30; then
	pass "httpd container running"
else
	fail "httpd container: $(cat "$WORK/c.err") state $(state_of "$WEB")"
	finish
fi

# --- per transport -----------------------------------------------------------
for tr in spdy websocket; do
	# 1. exec -it through a pty
	rc=0; in_pty -- "${CRI[@]}" exec -it --transport "$tr" "$WEB" sh -c 'test -t 0 && test -t 1 && echo TTY-OK' >"$WORK/out" 2>&1 || rc=$?
	grep -q TTY-OK "$WORK/out" && pass "$tr: exec -it: the command sees a terminal (TTY-OK)" ||
		fail "$tr: exec -it: no TTY-OK, rc $rc, output: $(oneline "$WORK/out")"
	# The client's stdin (the terminal) stays open: the session must end with the command.
	[[ $rc == 0 ]] && pass "$tr: exec -it: the session ends with the command (exit 0)" ||
		fail "$tr: exec -it: crictl rc $rc$([[ $rc == 124 ]] && echo ": still running ${PTY_TIMEOUT:-20}s after the command ended, killed")"

	# 2. exec -i with piped stdin, and exit codes
	rc=0; out=$(echo "hello-$tr" | cri exec -i --transport "$tr" "$WEB" cat 2>"$WORK/err") || rc=$?
	[[ $rc == 0 && $out == "hello-$tr" ]] && pass "$tr: exec -i: piped stdin comes back from cat" ||
		fail "$tr: exec -i cat: rc $rc, output '$out', $(oneline "$WORK/err")"
	rc=0; cri exec -i --transport "$tr" "$WEB" sh -c 'exit 7' </dev/null >/dev/null 2>"$WORK/err" || rc=$?
	[[ $rc != 0 ]] && grep -q "exit code 7" "$WORK/err" && pass "$tr: exec: exit code 7 returned ($(grep -o 'command terminated[^"]*exit code 7' "$WORK/err" | head -1))" ||
		fail "$tr: exec exit code: crictl rc $rc, $(oneline "$WORK/err")"
	rc=0; cri exec --transport "$tr" "$WEB" true </dev/null >/dev/null 2>"$WORK/err" || rc=$?
	[[ $rc == 0 ]] && pass "$tr: exec: exit code 0 returned as success" || fail "$tr: exec true: crictl rc $rc, $(oneline "$WORK/err")"

	# 3. attach to a tty+stdin sh (a fresh container per transport: `exit` ends it)
	SH=
	if SH=$(cri create "$POD" "$WORK/shell.json" "$WORK/pod.json" 2>"$WORK/err") && cri start "$SH" >/dev/null 2>>"$WORK/err" &&
		wait_state "$SH" CONTAINER_RUNNING 30; then
		rc=0
		# The quotes keep the typed line (echoed by the tty) from matching: only sh's output does.
		in_pty --send "echo ATT''ACHED-$tr\n" --until "ATTACHED-$tr" -- "${CRI[@]}" attach -it --transport "$tr" "$SH" >"$WORK/out" 2>&1 || rc=$?
		if grep -q "ATTACHED-$tr" "$WORK/out" && [[ $rc == 0 ]]; then
			pass "$tr: attach -it: typed command ran, exit ended the session"
		else
			fail "$tr: attach -it: rc $rc, output: $(oneline "$WORK/out")"
		fi
		wait_state "$SH" CONTAINER_EXITED 30 && pass "$tr: attached sh exited after 'exit'" || fail "$tr: attached sh state $(state_of "$SH")"
		cri stop --timeout 1 "$SH" >/dev/null 2>&1 || true
		cri rm -f "$SH" >/dev/null 2>&1 || true
	else
		fail "$tr: attach container: $(oneline "$WORK/err")"
	fi

	# 4. port-forward to httpd
	cri exec -s "$WEB" sh -c "echo crius-pf-$tr >/www/index.html" >/dev/null 2>&1 || true
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"${CRI[@]}" port-forward --transport "$tr" "$POD" "$port:80" >"$WORK/pf.out" 2>&1 &
	PF_PID=$!
	for ((i = 0; i < 300; i++)); do
		grep -q "Forwarding from" "$WORK/pf.out" 2>/dev/null && break
		[[ -d /proc/$PF_PID ]] || break
		sleep 0.1
	done
	if grep -q "Forwarding from" "$WORK/pf.out"; then
		rc=0; body=$(curl -sS --max-time 20 "http://127.0.0.1:$port/index.html" 2>"$WORK/err") || rc=$?
		[[ $rc == 0 && $body == "crius-pf-$tr" ]] && pass "$tr: port-forward $port:80: GET returns the file" ||
			fail "$tr: port-forward GET: curl rc $rc, body '$body', $(oneline "$WORK/err"); crictl: $(oneline "$WORK/pf.out")"
		# a second connection through the same forward
		rc=0; body=$(curl -sS --max-time 20 "http://127.0.0.1:$port/index.html" 2>"$WORK/err") || rc=$?
		[[ $rc == 0 && $body == "crius-pf-$tr" ]] && pass "$tr: port-forward: a second GET works too" ||
			fail "$tr: port-forward second GET: curl rc $rc, body '$body', $(oneline "$WORK/err"); crictl: $(oneline "$WORK/pf.out")"
	else
		fail "$tr: port-forward did not start: $(oneline "$WORK/pf.out")"
	fi
	kill "$PF_PID" 2>/dev/null || true
	wait "$PF_PID" 2>/dev/null || true
	PF_PID=
done

# --- 5. an exec URL works once ----------------------------------------------
# crictl gets a URL from Exec and logs it with --debug; with TLS files that do not exist it
# fails before connecting, so the URL is still unused. Then we upgrade twice ourselves: the
# first use must switch protocols (101), the second must be refused.
# upgrade_status spdy|websocket URL: the status line of an upgrade request (closes at once).
cat >"$WORK/upgrade.py" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[2])
if sys.argv[1] == "websocket":
    hdrs = ("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n")
else:
    hdrs = "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
s = socket.create_connection((u.hostname, u.port or 80), timeout=10)
s.sendall(f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: Upgrade\r\n{hdrs}\r\n".encode())
buf = b""
while b"\r\n" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
s.close()
print(buf.split(b"\r\n", 1)[0].decode(errors="replace"))
PY
upgrade_status() { python3 "$WORK/upgrade.py" "$1" "$2" 2>&1 | tail -c 200; }
for tr in spdy websocket; do
	cri --debug exec --transport "$tr" --tls-ca "$WORK/none" --tls-cert "$WORK/none" --tls-key "$WORK/none" "$WEB" echo once \
		>/dev/null 2>"$WORK/err" || true
	url=$(grep -o 'Exec URL: [^ "]*' "$WORK/err" | head -1 | sed 's/^Exec URL: //')
	if [[ -z $url ]]; then
		fail "$tr: exec URL from crictl --debug: $(oneline "$WORK/err")"
		continue
	fi
	first=$(upgrade_status "$tr" "$url") second=$(upgrade_status "$tr" "$url")
	[[ $first == *" 101 "* ]] && pass "$tr: exec URL, first use: $first" || fail "$tr: exec URL, first use: '$first' (want 101)"
	[[ $second =~ \ 4[0-9][0-9]\  ]] && pass "$tr: exec URL, second use refused: $second" ||
		fail "$tr: exec URL, second use: '$second' (want 4xx)"
done

# --- 6. exec into a stopped container ----------------------------------------
if wait_state "$DONE" CONTAINER_EXITED 30; then
	for tr in spdy websocket; do
		rc=0; cri exec --transport "$tr" "$DONE" echo no >"$WORK/out" 2>"$WORK/err" || rc=$?
		[[ $rc != 0 ]] && grep -q FailedPrecondition "$WORK/err" && pass "$tr: exec into a stopped container: FailedPrecondition" ||
			fail "$tr: exec into a stopped container: crictl rc $rc, $(oneline "$WORK/err")"
	done
else
	fail "container 'true' reaches CONTAINER_EXITED (state $(state_of "$DONE"))"
fi

# --- removal -----------------------------------------------------------------
check "stopp" cri stopp "$POD"
check "rmp" cri rmp "$POD"
[[ -z $(cri pods -q --id "$POD" 2>/dev/null) ]] && { pass "pod gone from ListPodSandbox"; POD=; } || fail "pod still listed"

finish
}
