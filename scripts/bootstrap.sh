#!/usr/bin/env bash
# Creates the project venv on a fresh Debian machine and installs the project with dev tools.
# Debian packages are installed only when missing (needs root or sudo, as on CI and the gateway).
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "bootstrap: $python is missing or older than 3.11; installing Debian python3" >&2
    apt_install python3 python3-venv
    python=python3
fi
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
fi
# Servers the integration tests start on free ports: mosquitto (private brokers for outages, TLS
# and passwords), openssl (test certificates), VictoriaMetrics (an InfluxDB v2 write API), InfluxDB
# 1.x (the v1 /write API and InfluxQL, which every dashboard query runs against); socat for
# serial links.
missing=()
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v openssl >/dev/null || missing+=(openssl)
command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
command -v influxd >/dev/null || missing+=(influxdb)
command -v socat >/dev/null || missing+=(socat)  # pty pairs: RS-485 links for the RTU tests
command -v systemd-analyze >/dev/null || missing+=(systemd)  # checks the unit file (verify, security)
command -v faketime >/dev/null || missing+=(faketime)  # libfaketime: agents whose wall clock is set
# The board and reports in a real browser: Debian's headless Chromium and its chromedriver (Selenium
# drives them), and a CJK font so the Chinese pages render (and their screenshots show it).
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing+=(fonts-wqy-zenhei)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[dev]'
