#!/usr/bin/env bash
# Install, upgrade or remove the shopfloor edge agent on Debian / Raspberry Pi OS (arm64, x86-64).
#
#   sudo deploy/install.sh                      install or upgrade in place, then (re)start
#   sudo deploy/install.sh --wheelhouse DIR     the same without internet: wheels from DIR
#   sudo deploy/install.sh --uninstall          remove the program; config and data stay
#   sudo deploy/install.sh --uninstall --purge  remove config, data and the system user too
#   deploy/install.sh --destdir DIR             stage everything under DIR, touch nothing else
#
# Layout:
#   /opt/edge-agent/releases/<version>-<stamp>/  one venv per installed release (the last two kept)
#   /opt/edge-agent/venv -> releases/...         the running release; switched atomically
#   /etc/edge-agent/workshop.yaml                the plant's configuration (never overwritten)
#   /etc/edge-agent/devices/                     device profiles (a changed shipped one lands as .dist)
#   /etc/edge-agent/credentials/                 secrets, root-only, passed with LoadCredential=
#   /var/lib/edge-agent/                         outbox and certificates (systemd StateDirectory)
#   /etc/systemd/system/edge-agent.service       the unit; local changes go in a drop-in
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR=""
WHEELHOUSE=""
ACTION=install
PURGE=no
START=yes
SERVICE_USER=edge-agent
KEEP_RELEASES=2

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
say() { printf 'edge-agent install: %s\n' "$*"; }
die() { printf 'edge-agent install: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --destdir) DESTDIR="$(realpath -m "${2:?--destdir needs a directory}")"; shift 2 ;;
        --wheelhouse) WHEELHOUSE="$(realpath "${2:?--wheelhouse needs a directory}")"; shift 2 ;;
        --uninstall) ACTION=uninstall; shift ;;
        --purge) PURGE=yes; shift ;;
        --no-start) START=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done

OPT="$DESTDIR/opt/edge-agent"
ETC="$DESTDIR/etc/edge-agent"
STATE="$DESTDIR/var/lib/edge-agent"
UNIT="$DESTDIR/etc/systemd/system/edge-agent.service"

# With --destdir this is a staged install: files only, no user, no apt, no systemctl.
system() {
    if [ -n "$DESTDIR" ]; then
        say "staged install, skipped: $*"
    else
        "$@"
    fi
}

have_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

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

ensure_python() {
    if ! python3 -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        system apt-get install -y --no-install-recommends python3 python3-venv
    fi
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        system apt-get install -y --no-install-recommends python3-venv
    fi
}

ensure_user() {
    if [ -n "$DESTDIR" ] || id "$SERVICE_USER" >/dev/null 2>&1; then
        return
    fi
    useradd --system --home-dir /var/lib/edge-agent --no-create-home \
        --shell /usr/sbin/nologin --user-group --groups dialout "$SERVICE_USER"
    say "created system user $SERVICE_USER (member of dialout for serial ports)"
}

install_release() {
    local version stamp release
    version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$SOURCE/pyproject.toml")"
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    release="$OPT/releases/$version-$stamp"
    mkdir -p "$OPT/releases"
    say "building $release"
    python3 -m venv "$release"
    local pip=("$release/bin/pip" install --quiet --disable-pip-version-check)
    if [ -n "$WHEELHOUSE" ]; then
        pip+=(--no-index --find-links "$WHEELHOUSE")
    fi
    if ! "${pip[@]}" "$SOURCE"; then
        rm -rf "$release"
        die "installing the package failed; the running release is unchanged"
    fi
    "$release/bin/edge-agent" --version >/dev/null || { rm -rf "$release"; die "the new release does not start"; }
    # switch atomically: a new symlink renamed over the old one
    ln -sfn "releases/$(basename "$release")" "$OPT/venv.new"
    mv -T "$OPT/venv.new" "$OPT/venv"
    cp "$SOURCE/README.md" "$OPT/README.md"
    # keep the newest releases for a rollback (ln -sfn releases/<old> /opt/edge-agent/venv)
    local old
    while IFS= read -r old; do
        [ "$OPT/releases/$old" = "$release" ] || rm -rf "${OPT:?}/releases/$old"
    done < <(ls -1 "$OPT/releases" | sort -r | tail -n +"$((KEEP_RELEASES + 1))")
    say "installed release $version ($(basename "$release")); $OPT/venv points to it"
}

install_config() {
    mkdir -p "$ETC/devices" "$STATE"
    install -d -m 0700 "$ETC/credentials"
    if [ ! -e "$ETC/workshop.yaml" ]; then
        sed -e 's|state_dir: var/edge-agent|state_dir: /var/lib/edge-agent|' \
            -e 's|path: var/edge-agent/|path: /var/lib/edge-agent/|' \
            "$SOURCE/configs/grinding-workshop.yaml" > "$ETC/workshop.yaml"
        chmod 0640 "$ETC/workshop.yaml"
        say "wrote the sample $ETC/workshop.yaml: edit it for this workshop"
    else
        say "kept $ETC/workshop.yaml"
    fi
    local shipped name
    for shipped in "$SOURCE"/configs/devices/*.yaml; do
        name="$(basename "$shipped")"
        if [ ! -e "$ETC/devices/$name" ]; then
            cp "$shipped" "$ETC/devices/$name"
        elif ! cmp -s "$shipped" "$ETC/devices/$name"; then
            cp "$shipped" "$ETC/devices/$name.dist"
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

install_unit() {
    mkdir -p "$(dirname "$UNIT")"
    install -m 0644 "$SOURCE/deploy/systemd/edge-agent.service" "$UNIT"
    if have_systemd; then
        systemctl daemon-reload
        systemctl enable edge-agent.service
        if [ "$START" = yes ]; then
            if "$OPT/venv/bin/edge-agent" validate -c "$ETC/workshop.yaml"; then
                systemctl restart edge-agent.service
                say "started; follow it with: journalctl -fu edge-agent"
            else
                say "not started: fix $ETC/workshop.yaml, then: systemctl restart edge-agent"
            fi
        fi
    else
        system systemctl daemon-reload
    fi
}

uninstall() {
    if have_systemd; then
        systemctl disable --now edge-agent.service 2>/dev/null || true
    fi
    rm -f "$UNIT"
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
ensure_python
ensure_user
install_release
install_config
install_unit
