#!/usr/bin/env bash
# Install, upgrade or remove the shopfloor edge agent on Debian / Raspberry Pi OS (arm64, x86-64).
# Run it from a checkout (deploy/install.sh) or from an unpacked offline bundle (./install.sh).
# `deploy/install.sh --help` lists the options; the layout it creates:
#
#   /opt/edge-agent/releases/<version>-<stamp>/  one venv per installed release (the last two kept)
#   /opt/edge-agent/venv -> releases/...         the running release; switched atomically
#   /usr/local/bin/edge-agent                    the command, linked to the running release
#   /etc/edge-agent/workshop.yaml                the plant's configuration (never overwritten)
#   /etc/edge-agent/devices/                     device profiles (a changed shipped one lands as .dist)
#   /etc/edge-agent/credentials/                 secrets, root-only, passed with LoadCredential=
#   /var/lib/edge-agent/                         outbox and certificates (systemd StateDirectory)
#   /etc/systemd/system/edge-agent.service       the unit; local changes go in a drop-in
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: install.sh [OPTION]...

Install or upgrade the shopfloor edge agent as the systemd service edge-agent, or remove it.

Where the program comes from (default: this checkout, with its dependencies from PyPI or the
index PIP_INDEX_URL names, e.g. a mirror):
  --bundle DIR|FILE   an offline bundle built by `make bundle` (the unpacked folder or its
                      .tar.gz): nothing is downloaded. ./install.sh inside an unpacked bundle
                      uses that bundle without this option.
  --wheelhouse DIR    a folder of wheels to install from, with no index: the project's own
                      wheel if it is there, else this checkout, built with DIR's setuptools
                      and wheel

Starting the service:
  (default)           start (or restart) it once /etc/edge-agent/workshop.yaml validates and
                      none of its connections still points at the sample's simulators
  --start             start it whenever the workshop validates, even while it is the sample's
  --no-start          install only; start it yourself: systemctl start edge-agent

Removing:
  --uninstall         remove the program and the unit; /etc/edge-agent and /var/lib/edge-agent stay
  --purge             with --uninstall: also remove the configuration, the data and the user

Other:
  --destdir DIR       stage every file under DIR; no user, no apt-get, no systemctl (tests)
  -h, --help          this help

Environment: PIP_INDEX_URL (and PIP_TRUSTED_HOST) choose a PyPI mirror for online installs,
e.g. PIP_INDEX_URL=https://pypi.tuna.tsinghua.edu.cn/simple in mainland China.
EOF
}

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DESTDIR=""
WHEELHOUSE=""
BUNDLE=""
ACTION=install
PURGE=no
START=auto
SERVICE_USER=edge-agent
KEEP_RELEASES=2
PACKAGE=shopfloor-edge-agent
BUNDLE_TMP=""

say() { printf 'edge-agent install: %s\n' "$*"; }
die() { printf 'edge-agent install: error: %s\n' "$*" >&2; exit 1; }
cleanup() { [ -z "$BUNDLE_TMP" ] || rm -rf "$BUNDLE_TMP"; }
trap cleanup EXIT

while [ $# -gt 0 ]; do
    case "$1" in
        --destdir) DESTDIR="$(realpath -m "${2:?--destdir needs a directory}")"; shift 2 ;;
        --wheelhouse) WHEELHOUSE="$(realpath "${2:?--wheelhouse needs a directory}")"; shift 2 ;;
        --bundle) BUNDLE="$(realpath "${2:?--bundle needs a folder or a .tar.gz}")"; shift 2 ;;
        --uninstall) ACTION=uninstall; shift ;;
        --purge) PURGE=yes; shift ;;
        --start) START=yes; shift ;;
        --no-start) START=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done

# An unpacked bundle holds install.sh beside wheels/ and MANIFEST.
if [ -z "$BUNDLE" ] && [ -z "$WHEELHOUSE" ] && [ -f "$SCRIPT_DIR/MANIFEST" ] && [ -d "$SCRIPT_DIR/wheels" ]; then
    BUNDLE="$SCRIPT_DIR"
fi
if [ -n "$BUNDLE" ] && [ -f "$BUNDLE" ]; then
    BUNDLE_TMP="$(mktemp -d)"
    tar -xzf "$BUNDLE" -C "$BUNDLE_TMP" || die "$BUNDLE is not a bundle (.tar.gz) made by make bundle"
    BUNDLE="$(find "$BUNDLE_TMP" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
fi
if [ -n "$BUNDLE" ]; then
    [ -f "$BUNDLE/MANIFEST" ] && [ -d "$BUNDLE/wheels" ] || die "$BUNDLE is not a bundle: no MANIFEST and wheels/"
    UNIT_SOURCE="$BUNDLE/systemd/edge-agent.service"
    README_SOURCE="$BUNDLE/README.md"
else
    SOURCE="$(cd "$SCRIPT_DIR/.." && pwd)"
    UNIT_SOURCE="$SOURCE/deploy/systemd/edge-agent.service"
    README_SOURCE="$SOURCE/README.md"
fi

OPT="$DESTDIR/opt/edge-agent"
ETC="$DESTDIR/etc/edge-agent"
STATE="$DESTDIR/var/lib/edge-agent"
UNIT="$DESTDIR/etc/systemd/system/edge-agent.service"
COMMAND_LINK="$DESTDIR/usr/local/bin/edge-agent"

# With --destdir this is a staged install: files only, no user, no apt, no systemctl.
system() {
    if [ -n "$DESTDIR" ]; then
        say "staged install, skipped: $*"
    else
        "$@"
    fi
}

have_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

manifest() { sed -n "s/^$1=//p" "$BUNDLE/MANIFEST"; }

check_platform() {
    case "$(uname -m)" in
        aarch64|x86_64) ;;
        armv7l) say "warning: 32-bit ARM is not tested; some wheels may need a compiler" ;;
        *) die "unsupported machine $(uname -m): arm64 (aarch64) and x86-64 are supported" ;;
    esac
    if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
        die "run as root (sudo), or stage into a folder with --destdir"
    fi
}

check_bundle() {
    local arch python
    arch="$(manifest arch)"
    python="$(manifest python)"
    [ "$arch" = "$(uname -m)" ] || die "this bundle is for $arch; this machine is $(uname -m): use the $(uname -m) bundle"
    if ! python3 -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$python'.split('.'))))"; then
        die "this bundle is for Python $python; this machine has $(python3 -V 2>&1): build one with make bundle BUNDLE_PYTHON=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    fi
}

ensure_python() {
    local missing=""
    python3 -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null || missing="python3 python3-venv"
    python3 -c 'import ensurepip' 2>/dev/null || missing="${missing:-python3-venv}"
    [ -n "$missing" ] || return 0
    if [ -n "$BUNDLE" ] || [ -n "$WHEELHOUSE" ]; then
        say "needs $missing (Debian packages), which an offline install cannot download"
    fi
    system apt-get install -y --no-install-recommends $missing
}

ensure_user() {
    if [ -n "$DESTDIR" ] || id "$SERVICE_USER" >/dev/null 2>&1; then
        return
    fi
    useradd --system --home-dir /var/lib/edge-agent --no-create-home \
        --shell /usr/sbin/nologin --user-group --groups dialout "$SERVICE_USER"
    say "created system user $SERVICE_USER (member of dialout for serial ports)"
}

release_version() {
    if [ -n "$BUNDLE" ]; then
        manifest version
    else
        sed -n 's/^version = "\(.*\)"/\1/p' "$SOURCE/pyproject.toml"
    fi
}

# What pip installs: the project from a bundle or wheelhouse (by name, no index), or this checkout.
pip_target() {
    local version="$1"
    if [ -n "$BUNDLE" ]; then
        printf '%s\n' --no-index --find-links "$BUNDLE/wheels" "$PACKAGE==$version"
    elif [ -n "$WHEELHOUSE" ]; then
        printf '%s\n' --no-index --find-links "$WHEELHOUSE"
        if compgen -G "$WHEELHOUSE/shopfloor_edge_agent-$version-*.whl" >/dev/null; then
            printf '%s\n' "$PACKAGE==$version"
        else
            printf '%s\n' "$SOURCE"
        fi
    else
        printf '%s\n' "$SOURCE"
    fi
}

install_release() {
    local version stamp release
    version="$(release_version)"
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    release="$OPT/releases/$version-$stamp"
    mkdir -p "$OPT/releases"
    say "building $release"
    python3 -m venv "$release"
    local pip=("$release/bin/pip" install --quiet --disable-pip-version-check)
    local target=()
    mapfile -t target < <(pip_target "$version")
    if ! "${pip[@]}" "${target[@]}"; then
        rm -rf "$release"
        die "installing the package failed; the running release is unchanged"
    fi
    "$release/bin/edge-agent" --version >/dev/null || { rm -rf "$release"; die "the new release does not start"; }
    # switch atomically: a new symlink renamed over the old one
    ln -sfn "releases/$(basename "$release")" "$OPT/venv.new"
    mv -T "$OPT/venv.new" "$OPT/venv"
    cp "$README_SOURCE" "$OPT/README.md"
    mkdir -p "$(dirname "$COMMAND_LINK")"
    ln -sfn /opt/edge-agent/venv/bin/edge-agent "$COMMAND_LINK"
    # keep the newest releases for a rollback (ln -sfn releases/<old> /opt/edge-agent/venv)
    local old
    while IFS= read -r old; do
        [ "$OPT/releases/$old" = "$release" ] || rm -rf "${OPT:?}/releases/$old"
    done < <(ls -1 "$OPT/releases" | sort -r | tail -n +"$((KEEP_RELEASES + 1))")
    say "installed release $version ($(basename "$release")); $OPT/venv points to it"
}

# The sample workshop and the device profiles ship inside the package: take them from the release.
shipped_dir() {
    "$OPT/venv/bin/python" -c 'from agent.config.shipped import shipped_dir; print(shipped_dir())'
}

install_config() {
    local shipped
    shipped="$(shipped_dir)"
    mkdir -p "$ETC/devices" "$STATE"
    install -d -m 0700 "$ETC/credentials"
    if [ ! -e "$ETC/workshop.yaml" ]; then
        sed -e 's|state_dir: var/edge-agent|state_dir: /var/lib/edge-agent|' \
            -e 's|path: var/edge-agent/|path: /var/lib/edge-agent/|' \
            "$shipped/grinding-workshop.yaml" > "$ETC/workshop.yaml"
        chmod 0640 "$ETC/workshop.yaml"
        say "wrote the sample $ETC/workshop.yaml: edit it for this workshop"
    else
        say "kept $ETC/workshop.yaml"
    fi
    local profile name
    for profile in "$shipped"/devices/*.yaml; do
        name="$(basename "$profile")"
        if [ ! -e "$ETC/devices/$name" ]; then
            cp "$profile" "$ETC/devices/$name"
        elif ! cmp -s "$profile" "$ETC/devices/$name"; then
            cp "$profile" "$ETC/devices/$name.dist"
            say "kept your $ETC/devices/$name; the shipped version is $name.dist"
        fi
    done
    if [ -z "$DESTDIR" ]; then
        chown -R root:"$SERVICE_USER" "$ETC"
        chmod 0750 "$ETC" "$ETC/devices"
        chown root:root "$ETC/credentials"
        chown -R "$SERVICE_USER":"$SERVICE_USER" "$STATE"
        chmod 0750 "$STATE"
    fi
}

next_steps() {
    local workshop=/etc/edge-agent/workshop.yaml
    cat <<EOF

Next:
  1. Edit $workshop: the agent id and site, your PLCs and gateways under
     connections, the machines, meters and shifts. Device profiles are in /etc/edge-agent/devices/
     (a file there replaces the shipped profile of the same name).
  2. Check it:          edge-agent validate -c $workshop
  3. Read every device: sudo -u $SERVICE_USER edge-agent run --once -c $workshop
  4. Start the service: systemctl start edge-agent && journalctl -fu edge-agent
     (or run this installer again: it starts the service once the workshop is this plant's)
EOF
}

# Whether the workshop in /etc may run as the service now: valid, and (unless --start) no longer
# pointing at the sample's simulators.
ready_to_start() {
    local check=("$OPT/venv/bin/edge-agent" --log-level ERROR validate -c "$ETC/workshop.yaml")
    [ "$START" = yes ] || check+=(--for-service)
    "${check[@]}"
}

install_unit() {
    mkdir -p "$(dirname "$UNIT")"
    install -m 0644 "$UNIT_SOURCE" "$UNIT"
    if have_systemd; then
        systemctl daemon-reload
        systemctl enable edge-agent.service
    else
        system systemctl daemon-reload
    fi
    if [ "$START" = no ]; then
        say "not started (--no-start); to run this release: systemctl restart edge-agent"
    elif ! ready_to_start; then
        say "not started: $ETC/workshop.yaml is not ready for this plant yet (see above)"
        next_steps
    elif have_systemd; then
        systemctl restart edge-agent.service
        say "started; follow it with: journalctl -fu edge-agent"
    else
        say "$ETC/workshop.yaml is ready; without systemd here, start it yourself"
    fi
}

uninstall() {
    if have_systemd; then
        systemctl disable --now edge-agent.service 2>/dev/null || true
    fi
    rm -f "$UNIT"
    if [ "$(readlink "$COMMAND_LINK" 2>/dev/null)" = /opt/edge-agent/venv/bin/edge-agent ]; then
        rm -f "$COMMAND_LINK"
    fi
    rm -rf "$OPT"
    have_systemd && systemctl daemon-reload
    say "removed the program and the unit"
    if [ "$PURGE" = yes ]; then
        rm -rf "$ETC" "$STATE"
        if [ -z "$DESTDIR" ] && id "$SERVICE_USER" >/dev/null 2>&1; then
            userdel "$SERVICE_USER"
        fi
        say "purged $ETC, $STATE and the user $SERVICE_USER"
    else
        say "kept $ETC and $STATE (remove them with --uninstall --purge)"
    fi
}

check_platform
if [ "$ACTION" = uninstall ]; then
    uninstall
    exit 0
fi
[ -z "$BUNDLE" ] || check_bundle
ensure_python
ensure_user
install_release
install_config
install_unit
