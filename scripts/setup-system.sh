#!/usr/bin/env bash
# Install every Debian package kto needs. Idempotent: when all packages are present it
# only runs dpkg-query and exits in well under a second.
set -euo pipefail

# Host tools: kernel build deps, cross compilers with their libc (static glibc for the
# selftests), QEMU for the three arches (+ OpenSBI firmware for riscv64), Python venv.
PACKAGES=(
  build-essential bc flex bison libelf-dev libssl-dev cpio xz-utils zstd dwarves ccache git
  rsync kmod file
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
  qemu-system-x86 qemu-system-arm qemu-system-misc opensbi
  linux-source-6.12
  python3 python3-venv python3-pip
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-system: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
echo "setup-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
