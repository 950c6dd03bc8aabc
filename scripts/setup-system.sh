#!/usr/bin/env bash
# Install every Debian package kto needs. Idempotent: when everything is present it only
# runs dpkg-query and a few file checks, well under a second.
set -euo pipefail

# Host tools: kernel build deps, cross compilers with their libc (static glibc for the
# selftests), QEMU for the three arches (+ OpenSBI firmware for riscv64), Python venv,
# headless Chromium (the results' index.html is tested by screenshot).
PACKAGES=(
  build-essential bc flex bison libelf-dev libssl-dev cpio xz-utils zstd lz4 dwarves ccache git
  rsync kmod file
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
  qemu-system-x86 qemu-system-arm qemu-system-misc opensbi
  linux-source-6.12
  python3 python3-venv python3-pip
  chromium
)
# Guest userland is downloaded (not installed) per arch by kto: arm64 from bookworm,
# riscv64 only exists in trixie.
FOREIGN_ARCHES=(arm64 riscv64)
TRIXIE_SOURCES=/etc/apt/sources.list.d/kto-trixie-riscv64.sources
TRIXIE_PIN=/etc/apt/preferences.d/kto-trixie

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
need_update=0

# The Debian mirror this machine already uses (never a hard-coded host).
debian_mirror() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hsE '^deb ' /etc/apt/sources.list 2>/dev/null \
          | awk '{for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
          | grep -E '/debian/?$' | head -n1 || true)
  fi
  [ -n "$uri" ] || { echo "setup-system: no Debian mirror found in apt sources" >&2; exit 2; }
  echo "$uri"
}

for a in "${FOREIGN_ARCHES[@]}"; do
  if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
    "${SUDO[@]}" dpkg --add-architecture "$a"
    need_update=1
  fi
done

if [ ! -f "$TRIXIE_SOURCES" ]; then
  mirror=$(debian_mirror)
  "${SUDO[@]}" tee "$TRIXIE_SOURCES" >/dev/null <<EOS
# Added by kto (scripts/setup-system.sh): riscv64 guest userland is only in trixie.
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Architectures: riscv64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
  need_update=1
fi
if [ ! -f "$TRIXIE_PIN" ]; then
  # Never let trixie replace bookworm packages on the host; only riscv64 comes from it.
  "${SUDO[@]}" tee "$TRIXIE_PIN" >/dev/null <<EOS
Package: *
Pin: release n=trixie
Pin-Priority: 100
EOS
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ] && [ $need_update -eq 0 ]; then
  echo "setup-system: all ${#PACKAGES[@]} packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-system: installing ${missing[*]}"
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
