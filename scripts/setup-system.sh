#!/usr/bin/env bash
# Installs the system packages hotpaths needs on Debian 12 / Ubuntu: a C++ toolchain and cmake for the
# addon; the Vulkan loader plus Mesa's lavapipe (Vulkan on the CPU) so the WebGPU backend runs on a
# machine without a GPU; Chromium for the browser test (tests/web.test.ts; WebGPU on its own
# SwiftShader); libopenblas0-pthread, the bench's peer for the cpu GEMM (loaded at run time with
# dlopen; nothing links against it). On Debian 12 lavapipe comes from bookworm-backports (its Mesa
# 22.3 is too old for Dawn); the backports source is added when missing. Safe to run twice.
set -euo pipefail
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
. /etc/os-release
if [[ ${ID:-} == debian && ${VERSION_CODENAME:-} == bookworm ]]; then
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "setup: adding the bookworm-backports source"
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
  fi
  MESA="mesa-vulkan-drivers/bookworm-backports"
else
  MESA="mesa-vulkan-drivers"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends cmake g++ make python3 xz-utils libvulkan1 libopenblas0-pthread "$MESA" chromium >/dev/null
echo "setup: system packages ready ($(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) lavapipe, chromium $(dpkg-query -W -f='${Version}' chromium))"
