#!/usr/bin/env bash
# Build offline install bundles of the edge agent, one per gateway architecture (`make bundle`).
#
#   deploy/bundle.sh [--arch x86_64|aarch64]... [--python 3.11] [--glibc 2.36] [--out DIR]
#
# Needs PyPI (or the mirror PIP_INDEX_URL names) on the machine that builds, none on the gateway.
# Each bundle is a folder and its .tar.gz in DIR (default dist/):
#
#   edge-agent-<version>-py<python>-<arch>/
#     install.sh           deploy/install.sh: ./install.sh installs from this bundle, offline
#     MANIFEST             version, architecture and Python the wheels are for
#     wheels/              the project's own wheel (built here: nothing is built on the gateway)
#                          and every dependency as a binary wheel for <arch> and CPython <python>,
#                          plus setuptools and wheel to build a checkout offline (--wheelhouse)
#     systemd/edge-agent.service
#     README.md
#
# Wheels are chosen for glibc up to --glibc (2.36: Debian 12 and Raspberry Pi OS bookworm, whose
# Python is 3.11); for Debian 13 use --python 3.13 --glibc 2.41.
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON_BIN="${PYTHON_BIN:-python3}"
ARCHS=()
PYTHON_VERSION=3.11
GLIBC=2.36
OUT="$SOURCE/dist"
OLDEST_GLIBC_MINOR=17  # manylinux2014, the oldest tag current wheels are built for

say() { printf 'edge-agent bundle: %s\n' "$*"; }
die() { printf 'edge-agent bundle: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCHS+=("${2:?--arch needs x86_64 or aarch64}"); shift 2 ;;
        --python) PYTHON_VERSION="${2:?--python needs a version such as 3.11}"; shift 2 ;;
        --glibc) GLIBC="${2:?--glibc needs a version such as 2.36}"; shift 2 ;;
        --out) OUT="$(realpath -m "${2:?--out needs a directory}")"; shift 2 ;;
        -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(x86_64 aarch64)
for arch in "${ARCHS[@]}"; do
    case "$arch" in x86_64|aarch64) ;; *) die "unsupported architecture '$arch': x86_64 or aarch64" ;; esac
done

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$SOURCE/pyproject.toml")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say "building the wheel of shopfloor-edge-agent $version"
"$PYTHON_BIN" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$work/project" "$SOURCE"
project_wheel="$(ls "$work"/project/shopfloor_edge_agent-"$version"-*.whl)"

glibc_minor="${GLIBC#2.}"
for arch in "${ARCHS[@]}"; do
    name="edge-agent-$version-py$PYTHON_VERSION-$arch"
    bundle="$OUT/$name"
    rm -rf "$bundle" "$bundle.tar.gz"
    mkdir -p "$bundle/wheels" "$bundle/systemd"
    platforms=(--platform "manylinux2014_$arch")
    for ((minor = OLDEST_GLIBC_MINOR; minor <= glibc_minor; minor++)); do
        platforms+=(--platform "manylinux_2_${minor}_$arch")
    done
    say "downloading wheels for $arch, CPython $PYTHON_VERSION, glibc <= $GLIBC"
    "$PYTHON_BIN" -m pip download --quiet --disable-pip-version-check \
        --only-binary=:all: --implementation cp --python-version "$PYTHON_VERSION" "${platforms[@]}" \
        --dest "$bundle/wheels" "$project_wheel" setuptools wheel
    cp "$SOURCE/deploy/install.sh" "$bundle/install.sh"
    cp "$SOURCE/deploy/systemd/edge-agent.service" "$bundle/systemd/"
    cp "$SOURCE/README.md" "$bundle/README.md"
    cat > "$bundle/MANIFEST" <<EOF
version=$version
arch=$arch
python=$PYTHON_VERSION
glibc=$GLIBC
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
    tar -czf "$bundle.tar.gz" -C "$OUT" "$name"
    say "$bundle.tar.gz ($(du -h "$bundle.tar.gz" | cut -f1), $(ls "$bundle/wheels" | wc -l) wheels)"
done
