#!/usr/bin/env bash
# Installs the Debian packages the tests need: chromium and npm (browser tests), and Java 17, Maven, unzip and curl
# (scripts/opensearch.sh fetches and runs a local OpenSearch node).
# Uses apt-get as root, or through sudo; otherwise says what to install (those tests then skip locally).
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v npm >/dev/null 2>&1 || missing+=(npm)  # axe-core for the browser tests' accessibility checks
command -v strace >/dev/null 2>&1 || missing+=(strace)  # the offline test: no network traffic but loopback
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  apt_get=(sudo apt-get)
else
  echo "install-system-deps: please install: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
