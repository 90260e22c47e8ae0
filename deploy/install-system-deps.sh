#!/usr/bin/env bash
# Installs what the integration tests run for real, if it is missing:
# Prometheus + promtool, Alertmanager, kcat, headless Chromium and its driver for
# the browser test (Debian packages), Java + Maven, and the Apache Kafka jars
# (Maven Central, via deploy/kafka/kafka.sh fetch).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v kcat >/dev/null || missing+=(kcat)
[ -x /usr/bin/chromium ] || missing+=(chromium)             # tests/test_report_browser.py uses these paths
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v mvn >/dev/null || missing+=(maven)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-system-deps: missing ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "install-system-deps: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bash deploy/kafka/kafka.sh fetch
