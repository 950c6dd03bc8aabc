#!/usr/bin/env bash
# gitlab-ci-local (npm) for `make test-ci`: runs the generated .gitlab-ci.yml on this
# machine with its shell executor. 4.55.0 is the last version that runs on Debian 12's
# Node 20 (later ones need Node 22). Installed into .ci-tools/ of the checkout, not
# globally; Node and npm come from Debian's nodejs and npm packages. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.55.0
TOOLS=.ci-tools
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi
bin="$TOOLS/node_modules/.bin/gitlab-ci-local"
if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
mkdir -p "$TOOLS"
npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "gitlab-ci-local@$VERSION"
"$bin" --version
