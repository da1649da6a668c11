# shellcheck shell=bash
# Shared helpers for crius's scripts (sourced, never run). Sets REPO, SHARED, TESTENV, PEERS,
# TARGET_DIR and a PATH that finds cargo and go when run through sudo.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The read-only shared tree lives beside the repository (CI: ../shared).
SHARED=${CRIUS_SHARED:-$(cd "$REPO/../shared" 2>/dev/null && pwd || true)}
TESTENV=${SHARED:+$SHARED/testenv}
PEERS=${SHARED:+$SHARED/peers}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
CACHE_DIR=${CRIUS_CACHE_DIR:-/var/cache/crius-ci}
CRI_TOOLS_VERSIONS=${CRI_TOOLS_VERSIONS:-"v1.37.0 v1.34.0"}
# Images the scripts use (served by the testenv registry through mirrors).
BUSYBOX_IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2
PAUSE_IMAGE=registry.k8s.io/pause:3.10
MIRRORED_REGISTRIES="docker.io registry.k8s.io k8s.gcr.io gcr.io quay.io public.ecr.aws"
TEST_REGISTRY=127.0.0.1:5000

# Tools installed per user (rustup, go install) are not on sudo's PATH.
for _d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/go/bin "$HOME/go/bin" /root/go/bin; do
	[[ -d $_d && :$PATH: != *":$_d:"* ]] && PATH=$PATH:$_d
done
if ! command -v cargo >/dev/null 2>&1 && [[ -n ${SUDO_USER:-} ]]; then
	_h=$(getent passwd "$SUDO_USER" | cut -d: -f6)
	if [[ -x $_h/.cargo/bin/cargo ]]; then
		PATH=$PATH:$_h/.cargo/bin
		export RUSTUP_HOME=${RUSTUP_HOME:-$_h/.rustup} CARGO_HOME=${CARGO_HOME:-$_h/.cargo}
	fi
fi
unset _d _h
export PATH

_tag=${_tag:-$(basename "$0" .sh)}
say() { printf '%s: %s\n' "$_tag" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }
need_root() { [[ $EUID -eq 0 ]] || die "run as root (sudo bash $0 ...)"; }

# apt_install PKG...: installs the packages that are not installed yet.
apt_install() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	say "apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

# cri_tools_module VERSION: prints the directory of sigs.k8s.io/cri-tools@VERSION in the Go
# module cache (downloaded from the module proxy when missing).
cri_tools_module() {
	command -v go >/dev/null || die "go not found"
	(cd / && go mod download -json "sigs.k8s.io/cri-tools@$1" 2>/dev/null) |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

# ensure_crictl: prints the path of a crictl binary (first of CRI_TOOLS_VERSIONS that builds),
# built once with `go install` into $CACHE_DIR/<version>/.
ensure_crictl() {
	local v bin
	if [[ -n ${CRICTL:-} && -x ${CRICTL:-} ]]; then echo "$CRICTL"; return 0; fi
	for v in $CRI_TOOLS_VERSIONS; do
		bin=$CACHE_DIR/$v/crictl
		if [[ ! -x $bin ]]; then
			command -v go >/dev/null || die "go not found: cannot build crictl"
			mkdir -p "$CACHE_DIR/$v"
			say "building crictl $v (go install)"
			GOBIN=$CACHE_DIR/$v go install \
				-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=${v#v}" \
				"sigs.k8s.io/cri-tools/cmd/crictl@$v" >&2 || { say "crictl $v did not build"; continue; }
		fi
		echo "$bin"
		return 0
	done
	die "could not build crictl ($CRI_TOOLS_VERSIONS)"
}

# ensure_critest: prints the path of a critest binary, built once from the module proxy
# (`go test -c ./cmd/critest` in a writable copy of the module) into $CACHE_DIR/<version>/.
ensure_critest() {
	local v bin dir work
	if [[ -n ${CRITEST:-} && -x ${CRITEST:-} ]]; then echo "$CRITEST"; return 0; fi
	for v in $CRI_TOOLS_VERSIONS; do
		bin=$CACHE_DIR/$v/critest
		if [[ ! -x $bin ]]; then
			dir=$(cri_tools_module "$v")
			[[ -n $dir && -d $dir ]] || { say "cri-tools $v not available from the module proxy"; continue; }
			mkdir -p "$CACHE_DIR/$v"
			work=$(mktemp -d /tmp/crius-critest-build.XXXXXX)
			cp -r "$dir/." "$work/" && chmod -R u+w "$work"
			say "building critest $v (go test -c ./cmd/critest)"
			if ! (cd "$work" && GOFLAGS=-mod=mod go test -c ./cmd/critest -o "$bin.tmp" \
				-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=${v#v}") >&2; then
				rm -rf "$work" "$bin.tmp"
				say "critest $v did not build"
				continue
			fi
			rm -rf "$work"
			mv "$bin.tmp" "$bin"
		fi
		echo "$bin"
		return 0
	done
	die "could not build critest ($CRI_TOOLS_VERSIONS)"
}

# cri_tools_version BIN: "v1.37.0" from a binary built by the functions above.
cri_tools_version() { basename "$(dirname "$1")"; }

# write_registries_conf FILE: containers-registries.conf mirroring every registry the test
# images come from to the local testenv registry (plain HTTP, no fallback).
write_registries_conf() {
	local host
	mkdir -p "$(dirname "$1")"
	{
		echo "# Written by crius scripts: every image registry is served by the local test registry."
		echo 'unqualified-search-registries = ["docker.io"]'
		for host in $MIRRORED_REGISTRIES; do
			printf '\n[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n' "$host" "$TEST_REGISTRY"
		done
	} >"$1"
}

# registry_up: true when the testenv registry answers.
registry_up() { [[ -n $TESTENV ]] && "$TESTENV/registry.sh" status >/dev/null 2>&1; }

# fmt_secs MS: "12.3s"
fmt_secs() { awk -v m="$1" 'BEGIN {printf "%.1fs", m / 1000}'; }
