#!/usr/bin/env bash
# conformance.sh: the CRI conformance gate. Builds critest (cri-tools from the Go module proxy,
# cached in /var/cache/crius-ci/<version>/), starts the offline image registry and a private crius
# instance (scripts/crius-instance.sh), runs the whole suite, and compares the JUnit report with
# the known-failures table in docs/CONFORMANCE.md (scripts/lib/critest_gate.py).
#
#   conformance.sh [options] [-- extra critest arguments]
#     --endpoint URL    run against a runtime that is already up (e.g. containerd's socket)
#                       instead of starting crius; implies --no-gate unless --gate is given
#     --no-gate         report the results, do not compare with the known-failures list
#     --gate            compare even with --endpoint
#     --skip-known      skip the listed specs (their --ginkgo.skip patterns): quicker, but then a
#                       listed spec that passes again goes unnoticed
#     --update          write the observed counts into docs/CONFORMANCE.md (not in CI)
#     --update-known    also rewrite the known-failures table from this run (not in CI)
#     --benchmark       run `critest -benchmark` instead (never gated); BENCH_N sets the counts
#     --results DIR     where the log, JUnit report and benchmark data go (default: a new
#                       /tmp/crius-conformance.XXXXXX)
#     --timeout MIN     bound on the whole critest run (default 40)
# Exit status: 0 pass, 1 fail, 3 crius binary missing (nothing was run).
# The whole script is one block, read before it runs: editing the file during a run is safe.
{
set -euo pipefail
_tag=conformance
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ENDPOINT= GATE=auto SKIP_KNOWN=0 UPDATE=0 UPDATE_KNOWN=0 BENCH=0 RESULTS= TIMEOUT_MIN=40
EXTRA=()
while (($#)); do
	case $1 in
	--endpoint) ENDPOINT=$2; shift ;;
	--no-gate) GATE=no ;;
	--gate) GATE=yes ;;
	--skip-known) SKIP_KNOWN=1 ;;
	--update) UPDATE=1 ;;
	--update-known) UPDATE=1 UPDATE_KNOWN=1 ;;
	--benchmark) BENCH=1 ;;
	--results) RESULTS=$2; shift ;;
	--timeout) TIMEOUT_MIN=$2; shift ;;
	--) shift; EXTRA=("$@"); break ;;
	-h | --help) sed -n '2,/^# The whole script/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done
need_root
[[ $GATE == auto ]] && { [[ -n $ENDPOINT ]] && GATE=no || GATE=yes; }
if ((UPDATE)) && [[ ${CI:-} == true ]]; then die "--update is for developers, not for CI"; fi
DOC=${CONFORMANCE_DOC:-$REPO/docs/CONFORMANCE.md}

INSTANCE= STARTED_REGISTRY=0 SHM_BEFORE= NRI_ARGS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $INSTANCE ]]; then bash "$REPO/scripts/crius-instance.sh" stop "$INSTANCE" || rc=1; fi
	if ((STARTED_REGISTRY)); then "$TESTENV/registry.sh" stop >/dev/null || true; fi
	# SysV shared memory segments critest's HostIpc spec makes on the host (ipcmk -M) and leaves.
	if [[ -f ${SHM_BEFORE:-} ]]; then
		for n in $(awk 'NR > 1 {print $2}' /proc/sysvipc/shm | sort | comm -13 "$SHM_BEFORE" -); do ipcrm -m "$n" 2>/dev/null || true; done
		rm -f "$SHM_BEFORE"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. crius first: without a daemon there is nothing to run (and no reason to build critest).
if [[ -z $ENDPOINT ]]; then
	CRIUS_BIN=${CRIUS_BIN:-}
	for b in ${CRIUS_BIN:-} "$TARGET_DIR/debug/crius" "$TARGET_DIR/release/crius"; do
		[[ -x $b ]] && { CRIUS_BIN=$b; break; }
	done
	if [[ -z $CRIUS_BIN || ! -x $CRIUS_BIN ]]; then
		say "###########################################################################"
		say "### crius binary missing ($TARGET_DIR/{debug,release}/crius): critest NOT RUN"
		say "###########################################################################"
		exit 3
	fi
	export CRIUS_BIN
fi

# 2. tools and images
CRITEST=$(ensure_critest)
CRICTL=$(ensure_crictl)
export CRICTL
VERSION=$(cri_tools_version "$CRITEST")
[[ -n $TESTENV && -x $TESTENV/registry.sh ]] || die "test image fixture not found ($REPO/../shared/testenv)"
RESULTS=${RESULTS:-$(mktemp -d /tmp/crius-conformance.XXXXXX)}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
if ! registry_up; then "$TESTENV/registry.sh" start >&2; STARTED_REGISTRY=1; fi
flock /tmp/crius-testenv.lock "$TESTENV/images.sh" >"$RESULTS/images.log" 2>&1 || die "testenv images.sh failed; see $RESULTS/images.log"

# 3. the runtime under test
if [[ -z $ENDPOINT ]]; then
	INSTANCE=$(mktemp -d /tmp/crius-conformance-instance.XXXXXX)
	if ! CRIUS_LOG_LEVEL=${CRIUS_LOG_LEVEL:-debug,h2=info,hyper=info,hyper_util=info,tonic=info,tower=info} bash "$REPO/scripts/crius-instance.sh" start "$INSTANCE"; then
		cp "$INSTANCE/crius.log" "$RESULTS/crius.log" 2>/dev/null || true
		say "###########################################################################"
		say "### crius ($CRIUS_BIN) is present but did not start or answer the CRI:"
		say "### conformance FAILED without running critest (log: $RESULTS/crius.log)"
		say "###########################################################################"
		exit 1
	fi
	# shellcheck disable=SC1091
	source "$INSTANCE/env"
	ENDPOINT=$CRIUS_ENDPOINT
	# critest runs its NRI specs only when given the runtime's NRI socket.
	[[ -n ${CRIUS_NRI_SOCK:-} ]] && NRI_ARGS=(-nri-socket "$CRIUS_NRI_SOCK")
	LABEL="$VERSION vs crius $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
else
	"$CRICTL" --runtime-endpoint "$ENDPOINT" --timeout 10s version >/dev/null 2>&1 ||
		die "no CRI runtime answers on $ENDPOINT"
	LABEL="$VERSION vs $("$CRICTL" --runtime-endpoint "$ENDPOINT" version 2>/dev/null | awk '/RuntimeName|RuntimeVersion/ {printf "%s ", $2}')"
fi
say "critest $VERSION against $ENDPOINT; results in $RESULTS"

# 4. run
rc=0
t0=$(now_ms)
if ((BENCH)); then
	cat >"$RESULTS/params.yaml" <<EOF
containersNumber: ${BENCH_N:-20}
containersNumberParallel: 1
containerBenchmarkTimeoutSeconds: 60
podsNumber: ${BENCH_N:-20}
podsNumberParallel: 1
podBenchmarkTimeoutSeconds: 60
imagesNumber: ${BENCH_N:-20}
imagesNumberParallel: 1
imageBenchmarkTimeoutSeconds: 60
podContainerStartBenchmarkTimeoutSeconds: 60
EOF
	(cd "$RESULTS" && timeout -s INT -k 60 "$((TIMEOUT_MIN * 60))" "$CRITEST" -benchmark \
		--runtime-endpoint "$ENDPOINT" --image-endpoint "$ENDPOINT" \
		--benchmarking-params-file "$RESULTS/params.yaml" --benchmarking-output-dir "$RESULTS" \
		--ginkgo.no-color "${EXTRA[@]}") >"$RESULTS/bench.log" 2>&1 || rc=$?
	say "critest -benchmark exited $rc after $(fmt_secs $(($(now_ms) - t0)))"
	if [[ -n $PEERS && -f $PEERS/bench_summary.py ]]; then
		python3 "$PEERS/bench_summary.py" "$RESULTS" | tee "$RESULTS/summary.txt"
	else
		grep -E "SUCCESS!|FAIL!" "$RESULTS/bench.log" || true
	fi
	exit "$rc"
fi

SHM_BEFORE=$RESULTS/shm.before
awk 'NR > 1 {print $2}' /proc/sysvipc/shm | sort >"$SHM_BEFORE"
SKIPS=()
if ((SKIP_KNOWN)); then
	while IFS= read -r p; do
		[[ -n $p ]] && SKIPS+=("--ginkgo.skip=$p")
	done < <(python3 "$REPO/scripts/lib/critest_gate.py" --patterns --doc "$DOC")
fi
(cd "$RESULTS" && timeout -s INT -k 60 "$((TIMEOUT_MIN * 60))" "$CRITEST" \
	--runtime-endpoint "$ENDPOINT" --image-endpoint "$ENDPOINT" \
	--ginkgo.no-color --ginkgo.v --ginkgo.junit-report="$RESULTS/junit.xml" \
	"${NRI_ARGS[@]}" "${SKIPS[@]}" "${EXTRA[@]}") >"$RESULTS/critest.log" 2>&1 || rc=$?
secs=$(fmt_secs $(($(now_ms) - t0)))
say "critest exited $rc after $secs: $(grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$RESULTS/critest.log" | tail -1)"
[[ $rc == 124 || $rc == 130 ]] && say "critest hit the ${TIMEOUT_MIN}-minute bound"
[[ -n $INSTANCE ]] && cp "$INSTANCE/crius.log" "$RESULTS/crius.log" 2>/dev/null || true

# 5. compare
GATE_ARGS=(--doc "$DOC" --label "$LABEL")
[[ $GATE == no ]] && GATE_ARGS+=(--no-gate)
((SKIP_KNOWN)) && GATE_ARGS+=(--skipped-known)
((UPDATE)) && GATE_ARGS+=(--update)
((UPDATE_KNOWN)) && GATE_ARGS+=(--update-known)
if [[ ! -s $RESULTS/junit.xml ]]; then
	say "no JUnit report: critest did not run its suite; last lines of $RESULTS/critest.log:"
	tail -n 30 "$RESULTS/critest.log" >&2
	exit 1
fi
grc=0
python3 "$REPO/scripts/lib/critest_gate.py" "$RESULTS/junit.xml" "${GATE_ARGS[@]}" || grc=$?
say "log: $RESULTS/critest.log, report: $RESULTS/junit.xml ($secs)"
exit "$grc"
exit
}
