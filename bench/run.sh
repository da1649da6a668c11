#!/usr/bin/env bash
# bench/run.sh: crius against Debian's containerd 1.6 (../shared/peers/containerd.sh) on the same
# machine, images (../shared/testenv registry), runc and CNI plugins, both driven through the
# CRI with crictl; writes docs/BENCHMARKS.md.
#
#   sudo bash bench/run.sh [--pods N] [--parallel P] [--calls C] [--many M] [--out FILE] [--runtimes "crius containerd"]
#
# Per runtime: image pull + unpack of a 3-layer image (rmi, pull; median of 5); pod start
# (runp + create + start of one busybox container) for N pods one after the other and P at once
# (defaults 40 and 10: the issue asks for memory with 50 running pods);
# daemon RSS idle and with N+P pods; per-container monitor / shim RSS and PSS (smaps_rollup);
# ListContainers and ContainerStatus latency with N+P containers; ExecSync latency; stop + remove
# (stopp + rmp) sequential and parallel; each CRI call alone, without crictl, from
# `critest -benchmark` (C samples each, default 20); pull + unpack of the 50 MiB, 7-layer image
# crius-bench/random:v1 (pushed by crius-image's pull_bench example; median of 5, each from an
# empty cache: crictl rmi between runs, containerd's leftover blobs counted with `ctr content ls`)
# against `skopeo copy` into a fresh oci: dir (download only). With M running containers (default
# 200, in pods of 50): ListContainers, ContainerStatus and ExecSync timed over one gRPC connection
# (crius's cri_bench example: no crictl), and the CPU time one ExecSync and one ListContainerStats
# (the kubelet's periodic stats call) cost the runtime side
# (daemon + monitors or shims, their reaped children included: /proc/PID/stat). Plus the floor: `ip netns add` + one CNI ADD with the
# same plugins + two `runc run -d` (bench/floor.py). Every figure made through crictl includes
# crictl's own cost (a process start and a connection: see the "crictl call" row).
# A step a runtime cannot do is reported as n/a. crius: target/release/crius (always rebuilt
# first with `cargo build --release -p crius -p crius-monitor`), else target/debug/crius.
# Everything after the line "<!-- hand-written below -->" in the existing OUT (or, when OUT is
# new, in docs/BENCHMARKS.md) is kept as is at the end of the new file.
# The whole script is one block, read before it runs: editing the file during a run is safe.
{
set -euo pipefail
_tag=bench
# shellcheck source=../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"

PODS=40 PAR=10 BENCH_N=20 MANY=200 OUT=$REPO/docs/BENCHMARKS.md RUNTIMES="crius containerd"
ARGS_GIVEN="$*"
while (($#)); do
	case $1 in
	--pods) PODS=$2; shift ;;
	--parallel) PAR=$2; shift ;;
	--calls) BENCH_N=$2; shift ;;
	--many) MANY=$2; shift ;;
	--out) OUT=$2; shift ;;
	--runtimes) RUNTIMES=$2; shift ;;
	-h | --help) sed -n '2,/^# The whole script/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
need_root
CRICTL=$(ensure_crictl)
export CRICTL
WORK=$(mktemp -d /tmp/crius-bench.XXXXXX)
RES=$WORK/results
mkdir -p "$RES"
INSTANCE= STARTED_REGISTRY=0 STARTED_CONTAINERD=0
ANCHOR=${ANCHOR_BASE:-/tmp/anchor-containerd}
MULTI_LAYER=gcr.io/k8s-staging-cri-tools/hostnet-nginx-$(dpkg --print-architecture):latest
BIG_REPO=crius-bench/random BIG_TAG=v1
BIG_IMAGE=docker.io/$BIG_REPO:$BIG_TAG # both runtimes mirror docker.io to the local registry
HAND_MARKER='<!-- hand-written below -->'
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $INSTANCE ]] && bash "$REPO/scripts/crius-instance.sh" stop "$INSTANCE" >&2 || true
	((STARTED_CONTAINERD)) && bash "$PEERS/containerd.sh" stop >&2 || true
	((STARTED_REGISTRY)) && "$TESTENV/registry.sh" stop >&2 || true
	[[ ${BENCH_KEEP:-0} == 1 ]] && say "kept $WORK" || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -n $TESTENV && -x $TESTENV/registry.sh ]] || die "../shared/testenv not found"
registry_up || { "$TESTENV/registry.sh" start >&2; STARTED_REGISTRY=1; }
"$TESTENV/images.sh" >"$WORK/images.log" 2>&1 || die "images.sh failed; see $WORK/images.log"
big_manifest() {
	curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
		"http://$TEST_REGISTRY/v2/$BIG_REPO/manifests/$BIG_TAG"
}
if ! big_manifest >/dev/null 2>&1; then
	say "pushing $TEST_REGISTRY/$BIG_REPO:$BIG_TAG (crius-image's pull_bench example, one run)"
	(cd "$REPO" && cargo run --release -p crius-image --example pull_bench -- 1 "$TEST_REGISTRY") >"$WORK/pull_bench.log" 2>&1 ||
		say "pull_bench failed (see the n/a rows)"
fi
# The image's blob digests (config + layers): to check what a runtime keeps after rmi.
big_manifest 2>/dev/null | python3 -c 'import json, sys
m = json.load(sys.stdin)
print(m["config"]["digest"])
for l in m["layers"]: print(l["digest"])' >"$WORK/big.digests" 2>/dev/null || : >"$WORK/big.digests"

# --- helpers -------------------------------------------------------------------------------------
cri() { timeout 120 "$CRICTL" --config "$WORK/crictl.yaml" --runtime-endpoint "$EP" --image-endpoint "$EP" --timeout 60s "$@"; }
# stats: numbers on stdin -> "p50 p99 mean n" (ms, nearest-rank percentiles)
stats() { python3 -c 'import sys, math
v = sorted(float(x) for x in sys.stdin.read().split())
if not v: print("n/a n/a n/a 0"); sys.exit()
pct = lambda q: v[max(0, math.ceil(q * len(v)) - 1)]
print("%.1f %.1f %.1f %d" % (pct(0.5), pct(0.99), sum(v) / len(v), len(v)))'; }
put() { echo "$2" >"$RES/$RT.$1"; } # put KEY VALUE
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# The pod as the kubelet sends it for a plain v1 Pod: PID namespace per container (CONTAINER = 1;
# the CRI default, POD, would mean shareProcessNamespace: true), network and IPC per pod.
pod_json() { # NAME
	mkdir -p "$WORK/logs/$RT/$1"
	printf '{"metadata":{"name":"%s","namespace":"bench","uid":"%s-%s","attempt":1},"log_directory":"%s","linux":{"security_context":{"namespace_options":{"pid":1}}}}\n' \
		"$1" "$RT" "$1" "$WORK/logs/$RT/$1" >"$WORK/spec/$RT-$1.json"
}
# One busybox container that exits on SIGTERM (sh with a trap as PID 1).
cat_ctr_json() {
	printf '{"metadata":{"name":"c"},"image":{"image":"%s"},"command":["sh","-c","trap \\"exit 0\\" TERM; sleep 3600 & wait"],"log_path":"c.log","linux":{}}\n' "$BUSYBOX_IMAGE"
}
# start_pod NAME: runp + create + start; prints "ms pod ctr"
start_pod() {
	local t0 pod ctr
	t0=$(now_ms)
	pod=$(cri runp "$WORK/spec/$RT-$1.json") || return 1
	ctr=$(cri create "$pod" "$WORK/spec/ctr.json" "$WORK/spec/$RT-$1.json") || return 1
	cri start "$ctr" >/dev/null || return 1
	echo "$(($(now_ms) - t0)) $pod $ctr"
}
stop_pod() { # POD: stopp + rmp; prints ms
	local t0
	t0=$(now_ms)
	cri stopp "$1" >/dev/null && cri rmp "$1" >/dev/null || return 1
	echo $(($(now_ms) - t0))
}
# time_n N CMD...: runs CMD N times, prints one ms figure per line (failures: nothing)
time_n() {
	local n=$1 i t0
	shift
	for ((i = 0; i < n; i++)); do
		t0=$(now_ms)
		"$@" >/dev/null 2>&1 || return 1
		echo $(($(now_ms) - t0))
	done
}

# cpu_ticks PID...: utime + stime + cutime + cstime of the processes (clock ticks).
cpu_ticks() {
	local pid sum=0 f
	for pid in "$@"; do
		f=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		sum=$((sum + $(awk '{print $12 + $13 + $14 + $15}' <<<"$f")))
	done
	echo "$sum"
}
# rpc_bench CALL N [ID]: one latency (ms) per line from cri_bench over one connection.
rpc_bench() { "$CRI_BENCH" "${EP#unix://}" "$@"; }

# monitor_pids: crius-monitor / conmon of this crius instance, or containerd's shims.
monitor_pids() {
	local d cmd
	for d in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
		case $RT in
		crius) [[ $(cat "$d/comm" 2>/dev/null) =~ ^(crius-monitor|conmon)$ && $cmd == *"$INSTANCE"* ]] && echo "${d#/proc/}" ;;
		containerd) [[ $cmd == *containerd-shim*"-address $ANCHOR/containerd.sock "* ]] && echo "${d#/proc/}" ;;
		esac
	done
	return 0
}

# big_blobs: how many of the 50 MiB image's blobs containerd's content store holds (nothing if
# ctr fails).
big_blobs() {
	local l
	[[ -s $WORK/big.digests ]] || return 0
	l=$(ctr -a "$ANCHOR/containerd.sock" -n k8s.io content ls -q 2>/dev/null) || return 0
	grep -cFf "$WORK/big.digests" <<<"$l" || true
}

# --- one runtime --------------------------------------------------------------------------------
measure() {
	local i line pods=() ctrs=() rss pss n pid t0 pod ctr
	printf 'runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 60\n' "$EP" "$EP" >"$WORK/crictl.yaml"
	mkdir -p "$WORK/spec"
	cat_ctr_json >"$WORK/spec/ctr.json"
	put load "$(cut -d' ' -f1-3 /proc/loadavg)"
	put version "$(cri version 2>/dev/null | awk '/RuntimeName|RuntimeVersion/ {printf "%s ", $2}')"
	put crictl "$(time_n 10 cri version | stats)"

	# image pull + unpack (3 layers), from the local registry
	: >"$WORK/pull.ms"
	for i in 1 2 3 4 5; do
		cri rmi "$MULTI_LAYER" >/dev/null 2>&1 || true
		time_n 1 cri pull "$MULTI_LAYER" >>"$WORK/pull.ms" || { : >"$WORK/pull.ms"; break; }
	done
	put pull "$(stats <"$WORK/pull.ms")"

	# pull + unpack of the 50 MiB, 7-layer image, each from an empty cache
	: >"$WORK/bigpull.ms" && : >"$WORK/bigleft"
	for i in 1 2 3 4 5; do
		cri rmi "$BIG_IMAGE" >/dev/null 2>&1 || true
		[[ $RT == containerd ]] && big_blobs >>"$WORK/bigleft"
		time_n 1 cri pull "$BIG_IMAGE" >>"$WORK/bigpull.ms" || { : >"$WORK/bigpull.ms"; break; }
		[[ $RT == containerd ]] && big_blobs >>"$WORK/bighave"
	done
	cri rmi "$BIG_IMAGE" >/dev/null 2>&1 || true
	put bigpull "$(stats <"$WORK/bigpull.ms")"
	# most blobs left after an rmi, fewest seen after a pull (shows the check sees them), total
	[[ -s $WORK/bigleft && -s $WORK/bighave ]] &&
		put bigleft "$(sort -n "$WORK/bigleft" | tail -1) $(sort -n "$WORK/bighave" | head -1) $(wc -l <"$WORK/big.digests")"
	cri pull "$BUSYBOX_IMAGE" >/dev/null && cri pull "$PAUSE_IMAGE" >/dev/null 2>&1 || true
	sleep 2 # let the daemon settle after the pulls (allocator, GC) before reading its RSS
	put rss_idle "$(rss_kib "$DPID") $(pss_kib "$DPID")"

	# warm-up: one pod (first-use costs: cgroup parents, bridge creation, lazy init)
	pod_json warm
	if line=$(start_pod warm); then stop_pod "$(echo "$line" | cut -d' ' -f2)" >/dev/null || true; fi

	# pod start, sequential
	: >"$WORK/start_seq.ms"
	for ((i = 0; i < PODS; i++)); do
		pod_json "seq-$i"
		line=$(start_pod "seq-$i") || { say "$RT: pod start failed ($i)"; break; }
		echo "${line%% *}" >>"$WORK/start_seq.ms"
		pods+=("$(echo "$line" | cut -d' ' -f2)") ctrs+=("$(echo "$line" | cut -d' ' -f3)")
	done
	put start_seq "$( ((${#pods[@]} == PODS)) && stats <"$WORK/start_seq.ms" || echo "n/a n/a n/a ${#pods[@]}")"

	# pod start, parallel
	for ((i = 0; i < PAR; i++)); do pod_json "par-$i"; done
	t0=$(now_ms)
	for ((i = 0; i < PAR; i++)); do (start_pod "par-$i" >"$WORK/par-$i.out" 2>/dev/null || true) & done
	wait
	put start_par_wall $(($(now_ms) - t0))
	for ((i = 0; i < PAR; i++)); do
		line=$(cat "$WORK/par-$i.out")
		[[ -n $line ]] || continue
		echo "${line%% *}" >>"$WORK/start_par.ms"
		pods+=("$(echo "$line" | cut -d' ' -f2)") ctrs+=("$(echo "$line" | cut -d' ' -f3)")
	done
	put start_par "$( [[ $(wc -l <"$WORK/start_par.ms" 2>/dev/null || echo 0) == "$PAR" ]] && stats <"$WORK/start_par.ms" || echo "n/a n/a n/a 0")"
	n=${#ctrs[@]}
	put running "$n"

	# memory with the pods running
	sleep 2
	put rss_busy "$(rss_kib "$DPID") $(pss_kib "$DPID")"
	rss=0 pss=0 i=0
	for pid in $(monitor_pids); do rss=$((rss + $(rss_kib "$pid"))) pss=$((pss + $(pss_kib "$pid"))) i=$((i + 1)); done
	put monitors "$i $rss $pss"

	# queries with many containers
	if ((n > 0)); then
		put list "$(time_n 10 cri ps -a -q | stats)"
		put status "$(time_n 10 cri inspect "${ctrs[0]}" | stats)"
		put exec "$(time_n 20 cri exec -s "${ctrs[0]}" true | stats)"
	fi

	# stop + remove, sequential for the first PODS, parallel for the rest
	: >"$WORK/stop_seq.ms"
	for ((i = 0; i < ${#pods[@]} && i < PODS; i++)); do stop_pod "${pods[$i]}" >>"$WORK/stop_seq.ms" || true; done
	put stop_seq "$(stats <"$WORK/stop_seq.ms")"
	for ((i = PODS; i < ${#pods[@]}; i++)); do (stop_pod "${pods[$i]}" >"$WORK/stoppar-$i.ms" 2>/dev/null || true) & done
	wait
	cat "$WORK"/stoppar-*.ms 2>/dev/null >"$WORK/stop_par.ms" || true
	rm -f "$WORK"/stoppar-*.ms "$WORK"/par-*.out "$WORK/start_par.ms"
	put stop_par "$(stats <"$WORK/stop_par.ms")"
	cri rmp -af >/dev/null 2>&1 || true

	# MANY running containers in pods of 50: list, status and exec over one gRPC connection
	local many=() per=50 p c before after
	for ((p = 0; p * per < MANY; p++)); do
		pod_json "many-$p"
		pod=$(cri runp "$WORK/spec/$RT-many-$p.json") || break
		for ((c = 0; c < per && p * per + c < MANY; c++)); do
			sed "s/\"name\":\"c\"/\"name\":\"c$c\"/; s/c.log/c$c.log/" "$WORK/spec/ctr.json" >"$WORK/spec/many.json"
			ctr=$(cri create "$pod" "$WORK/spec/many.json" "$WORK/spec/$RT-many-$p.json") && cri start "$ctr" >/dev/null && many+=("$ctr") || break 2
		done
	done
	put many "${#many[@]}"
	if ((${#many[@]} == MANY)) && [[ -x $CRI_BENCH ]]; then
		put rpc_list "$(rpc_bench list-containers 100 | stats)"
		put rpc_status "$(rpc_bench container-status 100 "${many[0]}" | stats)"
		# shellcheck disable=SC2046
		before=$(cpu_ticks "$DPID" $(monitor_pids))
		put rpc_exec "$(rpc_bench exec-sync 50 "${many[0]}" | stats)"
		# shellcheck disable=SC2046
		after=$(cpu_ticks "$DPID" $(monitor_pids))
		put exec_cpu "$(awk -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", d * 1000 / hz / 51}')"
		# the kubelet's periodic stats call: latency, and its CPU time on the runtime side
		# shellcheck disable=SC2046
		before=$(cpu_ticks "$DPID" $(monitor_pids))
		put rpc_cstats "$(rpc_bench list-container-stats 20 | stats)"
		# shellcheck disable=SC2046
		after=$(cpu_ticks "$DPID" $(monitor_pids))
		put cstats_cpu "$(awk -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", d * 1000 / hz / 21}')"
	else
		say "$RT: only ${#many[@]} of $MANY containers started (or no cri_bench): list/status/exec rows n/a"
	fi
	cri rmp -af >/dev/null 2>&1 || true

	# CRI calls without crictl: critest -benchmark (a Go client, one connection)
	BENCH_N=$BENCH_N bash "$REPO/scripts/conformance.sh" --benchmark --endpoint "$EP" --results "$WORK/critest-$RT" >"$WORK/critest-$RT.log" 2>&1 ||
		say "$RT: critest -benchmark failed (see the n/a rows)"
	python3 - "$WORK/critest-$RT" >"$RES/$RT.calls" <<'PYEOF' || true
import glob, json, os, statistics, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*_benchmark_data.json"))):
    d = json.load(open(path))
    for i, name in enumerate(d.get("operationsNames") or []):
        ms = [p["operationsDurationsNs"][i] / 1e6 for p in d.get("datapoints") or []
              if len(p.get("operationsDurationsNs") or []) > i and p["operationsDurationsNs"][i] > 0]
        if ms:
            print("%s %.1f %.1f" % (name, statistics.median(ms), max(ms)))
PYEOF
}

# --- runtimes ------------------------------------------------------------------------------------
# Always (re)build: a stale release binary would measure old code (cargo makes this a no-op when
# nothing changed).
say "building crius and cri_bench (release) for the benchmark"
(cd "$REPO" && cargo build --release -p crius -p crius-monitor && cargo build --release -p crius --example cri_bench) >&2 ||
	say "release build failed: crius falls back to the debug build, the one-connection rows are n/a"
CRI_BENCH=$TARGET_DIR/release/examples/cri_bench
CRIUS_NOTE=
for RT in $RUNTIMES; do
	case $RT in
	crius)
		if [[ -x $TARGET_DIR/release/crius ]]; then export CRIUS_BIN=$TARGET_DIR/release/crius; else
			export CRIUS_BIN=$TARGET_DIR/debug/crius CRIUS_NOTE=" (debug build)"
		fi
		INSTANCE=$(mktemp -d /tmp/crius-bench-instance.XXXXXX)
		if CRIUS_LOG_LEVEL=warn bash "$REPO/scripts/crius-instance.sh" start "$INSTANCE" >&2; then
			# shellcheck disable=SC1091
			source "$INSTANCE/env"
			EP=$CRIUS_ENDPOINT DPID=$CRIUS_PID
			cp "$INSTANCE"/cni/*.conflist "$WORK/floor.conflist"
			say "measuring crius ($CRIUS_BIN)"
			measure || say "crius: measurement stopped early"
			bash "$REPO/scripts/crius-instance.sh" stop "$INSTANCE" >&2 || true
		else
			say "crius did not start: its column is n/a"
			put version "not running"
		fi
		INSTANCE=
		;;
	containerd)
		[[ -n $PEERS && -x $PEERS/containerd.sh ]] || { say "../shared/peers/containerd.sh missing"; continue; }
		apt_install containerd
		if ! [[ -S $ANCHOR/containerd.sock ]] || ! "$CRICTL" --runtime-endpoint "unix://$ANCHOR/containerd.sock" version >/dev/null 2>&1; then
			ANCHOR_SKIP_IMAGES=1 bash "$PEERS/containerd.sh" start >&2
			STARTED_CONTAINERD=1
		fi
		EP=unix://$ANCHOR/containerd.sock DPID=$(cat "$ANCHOR/containerd.pid")
		say "measuring containerd"
		measure || say "containerd: measurement stopped early"
		((STARTED_CONTAINERD)) && { bash "$PEERS/containerd.sh" stop >&2; STARTED_CONTAINERD=0; }
		;;
	*) die "unknown runtime $RT" ;;
	esac
done

# --- skopeo: download of the same 50 MiB image into a fresh oci: dir (no unpack) ----------------
: >"$WORK/skopeo.ms"
for i in 1 2 3 4 5; do
	rm -rf "$WORK/skopeo-oci"
	time_n 1 skopeo copy --src-tls-verify=false "docker://$TEST_REGISTRY/$BIG_REPO:$BIG_TAG" "oci:$WORK/skopeo-oci" >>"$WORK/skopeo.ms" ||
		{ : >"$WORK/skopeo.ms"; break; }
done
rm -rf "$WORK/skopeo-oci"
stats <"$WORK/skopeo.ms" >"$RES/skopeo.bigpull"

# --- the floor -----------------------------------------------------------------------------------
if [[ ! -f $WORK/floor.conflist ]]; then
	sed "s|\"anchor0\"|\"crbfloor\"|; s|\"dataDir\": \"[^\"]*\"|\"dataDir\": \"$WORK/floor-ipam\"|" \
		"$ANCHOR/cni/10-anchor.conflist" >"$WORK/floor.conflist" 2>/dev/null || true
fi
if [[ -f $WORK/floor.conflist ]]; then
	# Same plugins, own bridge and address pool.
	python3 - "$WORK/floor.conflist" "$WORK/floor-ipam" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
for p in c["plugins"]:
    if p.get("type") == "bridge":
        p["bridge"] = "crbfloor"
        p.setdefault("ipam", {})["dataDir"] = sys.argv[2]
        p["ipam"]["ranges"] = [[{"subnet": "10.199.0.0/24"}]]
c["name"] = "crius-floor"
json.dump(c, open(sys.argv[1], "w"))
EOF
	if python3 "$REPO/bench/floor.py" --conflist "$WORK/floor.conflist" --work "$WORK/floor" --runs "$PAR" >"$WORK/floor.json"; then
		python3 -c 'import json,sys; print("\n".join("%.1f" % x for x in json.load(open(sys.argv[1]))["start_ms"]))' "$WORK/floor.json" | stats >"$RES/floor.start"
		python3 -c 'import json,sys; print("\n".join("%.1f" % x for x in json.load(open(sys.argv[1]))["stop_ms"]))' "$WORK/floor.json" | stats >"$RES/floor.stop"
	fi
	ip link delete crbfloor 2>/dev/null || true
fi

# --- report --------------------------------------------------------------------------------------
get() { cat "$RES/$1.$2" 2>/dev/null || echo; } # get RT KEY
col() { # col KEY FIELD -> crius value, containerd value, ratio
	local a b
	a=$(get crius "$1" | awk -v f="$2" '{print $f}') b=$(get containerd "$1" | awk -v f="$2" '{print $f}')
	[[ -z $a || $a == n/a ]] && a=n/a
	[[ -z $b || $b == n/a ]] && b=n/a
	printf '%s | %s | %s' "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b}')"
}
memcol() { # memcol KEY FIELD (KiB) -> MiB columns + ratio
	local a b
	a=$(get crius "$1" | awk -v f="$2" '$f != "" {printf "%.1f", $f / 1024}') b=$(get containerd "$1" | awk -v f="$2" '$f != "" {printf "%.1f", $f / 1024}')
	printf '%s | %s | %s' "${a:-n/a}" "${b:-n/a}" "$(awk -v a="${a:-n/a}" -v b="${b:-n/a}" 'BEGIN {if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b}')"
}
permon() { # per-container monitor/shim memory: FIELD 2 = RSS, 3 = PSS; divided by running containers
	local rt v
	for rt in crius containerd; do
		v=$(awk -v f="$1" -v n="$(get "$rt" running)" '$1 > 0 && n > 0 {printf "%.2f", $f / n / 1024}' "$RES/$rt.monitors" 2>/dev/null || true)
		printf '%s\n' "${v:-n/a}"
	done | paste -sd' ' | awk '{r = ($1 == "n/a" || $2 == "n/a" || $2 + 0 == 0) ? "n/a" : sprintf("%.2f", $1 / $2); printf "%s | %s | %s", $1, $2, r}'
}
mkdir -p "$(dirname "$OUT")"
HAND_SRC=$OUT
[[ -f $HAND_SRC ]] && grep -qxF "$HAND_MARKER" "$HAND_SRC" || HAND_SRC=$REPO/docs/BENCHMARKS.md
HAND=
[[ -f $HAND_SRC ]] && grep -qxF "$HAND_MARKER" "$HAND_SRC" && HAND=$(sed -n "/^$HAND_MARKER\$/,\$p" "$HAND_SRC")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo "# Benchmarks: crius and containerd"
	echo
	echo "Produced by \`sudo bash bench/run.sh${ARGS_GIVEN:+ $ARGS_GIVEN}\` on $(date -u +%F) at commit"
	echo "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'): $(nproc) cores, $(uname -r), runc $(runc --version | awk 'NR==1 {print $3}'),"
	echo "crictl $(cri_tools_version "$CRICTL"), images from the local registry (\`../shared/testenv\`)."
	echo "crius: $(get crius version | sed 's/^$/not measured/')${CRIUS_NOTE}; containerd: $(get containerd version | sed 's/^$/not measured/') (\`../shared/peers/containerd.sh\`)."
	echo
	echo "Both runtimes are driven through the CRI with \`crictl\`, one process per call, so every"
	echo "latency below includes crictl's own cost (first row: a \`Version\` call). A pod start is"
	echo "3 calls (runp, create, start of one busybox container), a stop + remove 2 (stopp, rmp)."
	echo "Times in ms (p50 / p99 nearest-rank), memory in MiB. Ratio = crius / containerd (below 1:"
	echo "crius is faster or smaller). Figures on a shared machine move from run to run: compare"
	echo "within one run. Load average (1, 5, 15 min): $LOAD_START at the start, crius"
	echo "$(get crius load | sed 's/^$/n\/a/') and containerd $(get containerd load | sed 's/^$/n\/a/') when each began, $LOAD_END at the end"
	echo "(2 cores; the load average is what else the machine was doing)."
	echo
	echo "| measure | crius | containerd | ratio |"
	echo "|---|---|---|---|"
	echo "| crictl call (\`crictl version\`), p50 | $(col crictl 1) |"
	echo "| pod start, sequential ($PODS pods), p50 | $(col start_seq 1) |"
	echo "| pod start, sequential ($PODS pods), p99 | $(col start_seq 2) |"
	echo "| pod start, $PAR in parallel, p50 | $(col start_par 1) |"
	echo "| pod start, $PAR in parallel, p99 | $(col start_par 2) |"
	echo "| pod start, $PAR in parallel, wall time of all | $(col start_par_wall 1) |"
	echo "| stop + remove, sequential, p50 | $(col stop_seq 1) |"
	echo "| stop + remove, sequential, p99 | $(col stop_seq 2) |"
	echo "| stop + remove, $PAR in parallel, p50 | $(col stop_par 1) |"
	echo "| stop + remove, $PAR in parallel, p99 | $(col stop_par 2) |"
	echo "| image pull + unpack, 3 layers (\`$MULTI_LAYER\`), p50 of 5 | $(col pull 1) |"
	echo "| image pull + unpack, 50 MiB in 7 layers (\`$BIG_IMAGE\`), p50 of 5 | $(col bigpull 1) |"
	echo "| same image, p99 (= slowest of 5) | $(col bigpull 2) |"
	echo "| ListContainers (\`crictl ps -a\`) with $((PODS + PAR)) containers, p50 | $(col list 1) |"
	echo "| ContainerStatus (\`crictl inspect\`), p50 | $(col status 1) |"
	echo "| ExecSync (\`crictl exec -s ... true\`), p50 | $(col exec 1) |"
	echo "| ExecSync, p99 | $(col exec 2) |"
	echo "| ListContainers with $MANY running containers, one gRPC connection, p50 | $(col rpc_list 1) |"
	echo "| same, p99 | $(col rpc_list 2) |"
	echo "| ContainerStatus with $MANY running containers, one connection, p50 | $(col rpc_status 1) |"
	echo "| ExecSync (\`true\`) with $MANY running containers, one connection, p50 | $(col rpc_exec 1) |"
	echo "| same, p99 | $(col rpc_exec 2) |"
	echo "| CPU time per ExecSync, runtime side (daemon + monitors / shims), ms | $(col exec_cpu 1) |"
	echo "| ListContainerStats with $MANY running containers, one connection, p50 | $(col rpc_cstats 1) |"
	echo "| CPU time per ListContainerStats, runtime side (daemon + monitors / shims), ms | $(col cstats_cpu 1) |"
	echo "| daemon RSS idle (images pulled, no pods) | $(memcol rss_idle 1) |"
	echo "| daemon RSS with $((PODS + PAR)) pods | $(memcol rss_busy 1) |"
	echo "| daemon PSS with $((PODS + PAR)) pods | $(memcol rss_busy 2) |"
	echo "| monitors / shims: total RSS ÷ running containers | $(permon 2) |"
	echo "| monitors / shims: total PSS ÷ running containers | $(permon 3) |"
	echo
	echo "Monitor processes: crius $(get crius monitors | awk '{print $1}') for $(get crius running) containers;"
	echo "containerd $(get containerd monitors | awk '{print $1}') shims (one per pod) for $(get containerd running) containers."
	echo "PSS (from \`/proc/PID/smaps_rollup\`) shares the pages processes have in common among them."
	echo
	echo "50 MiB pull: \`$BIG_IMAGE\` (pushed by \`cargo run --release -p crius-image --example pull_bench\`;"
	echo "five 10 MiB layers of random data, one of 4000 small files, one of text) through each runtime's"
	echo "docker.io mirror, \`crictl rmi\` before every pull. For comparison, \`skopeo copy --src-tls-verify=false"
	echo "docker://$TEST_REGISTRY/$BIG_REPO:$BIG_TAG oci:DIR\` into a fresh dir (download + digest check, no unpack):"
	echo "p50 $(awk '{print $1}' "$RES/skopeo.bigpull" 2>/dev/null | sed 's/^$/n\/a/') ms, p99 $(awk '{print $2}' "$RES/skopeo.bigpull" 2>/dev/null | sed 's/^$/n\/a/') ms ($(awk '{print $4}' "$RES/skopeo.bigpull" 2>/dev/null) runs)."
	if [[ -n $(get containerd bigleft) ]]; then
		read -r left have total <<<"$(get containerd bigleft)"
		if ((left == 0 && have == total)); then
			echo "containerd: after each \`crictl rmi\` none of the image's $total blobs were left in its content store"
			echo "(\`ctr -n k8s.io content ls\`; all $total there after each pull), so every pull fetched everything."
		elif ((left == 0)); then
			echo "containerd: \`ctr -n k8s.io content ls\` showed none of the image's blobs after rmi, but only $have of"
			echo "$total after a pull: the leftover check is not conclusive."
		else
			echo "containerd: after \`crictl rmi\` up to $left of the image's $total blobs were still in its content"
			echo "store (\`ctr -n k8s.io content ls\`): its later pulls were partly served from that cache and its"
			echo "figure is too low."
		fi
	fi
	echo
	echo "## CRI calls without crictl"
	echo
	echo "\`critest -benchmark\` (cri-tools' Go client, one connection; $BENCH_N samples each, one at a"
	echo "time; \`scripts/conformance.sh --benchmark\`): median ms, max in brackets."
	echo
	echo "| call | crius | containerd | ratio (medians) |"
	echo "|---|---|---|---|"
	for op in $(cat "$RES"/*.calls 2>/dev/null | awk '!seen[$1]++ {print $1}'); do
		a=$(awk -v o="$op" '$1 == o {printf "%s (%s)", $2, $3}' "$RES/crius.calls" 2>/dev/null || true)
		b=$(awk -v o="$op" '$1 == o {printf "%s (%s)", $2, $3}' "$RES/containerd.calls" 2>/dev/null || true)
		echo "| $op | ${a:-n/a} | ${b:-n/a} | $(awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN {if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b}') |"
	done
	echo
	echo "## The floor"
	echo
	echo "What any runtime has to do for a pod of two containers, without a daemon: \`ip netns add\`,"
	echo "one CNI ADD through the same plugins (bridge + portmap), and two \`runc run -d\` of busybox"
	echo "bundles (no image work): \`bench/floor.py\`, $PAR runs."
	echo
	echo "| floor | p50 | p99 | mean |"
	echo "|---|---|---|---|"
	echo "| netns + CNI ADD + 2 x runc run -d | $(awk '{print $1 " | " $2 " | " $3}' "$RES/floor.start" 2>/dev/null || echo 'n/a | n/a | n/a') |"
	echo "| runc delete -f x 2 + CNI DEL + netns delete | $(awk '{print $1 " | " $2 " | " $3}' "$RES/floor.stop" 2>/dev/null || echo 'n/a | n/a | n/a') |"
	if [[ -n $HAND ]]; then
		echo
		echo "$HAND"
	fi
} >"$OUT"
cat "$OUT"
say "wrote $OUT"
exit
}
