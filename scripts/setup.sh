#!/usr/bin/env bash
# Installs what loupe needs to build and test on Debian 12 (apt-get, as root),
# skipping packages that are already installed. Extra packages a script
# needs (scripts/fuzz.sh: clang) come as arguments.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libspdlog-dev libfmt-dev prometheus-cpp-dev libbenchmark-dev
  libgtest-dev libgmock-dev libgoogle-perftools-dev libssl-dev openssl
  curl netcat-openbsd telnet wrk prometheus python3 google-perftools slowhttptest gdb
  nginx-light python3-aiohttp
  clang-format-16
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    echo "setup: these packages are missing and this is not root: ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Packages with a service (nginx) are installed without starting it: the
# tests start their own, on ports of their own.
guard=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  guard=yes
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ -n "$guard" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
