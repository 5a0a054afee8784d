#!/bin/sh
# Installs the Debian 12 packages bookd needs to build, test and benchmark.
# Idempotent and quiet when everything is already there.
set -eu

PKGS="build-essential pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
libcmark-gfm-dev libcmark-gfm-extensions-dev libsodium-dev libcmocka-dev
libssl-dev libcurl4-openssl-dev libutf8proc-dev libzip-dev libpq-dev postgresql python3-cryptography
python3 python3-pytest python3-pytest-xdist python3-requests python3-yaml clang libclang-rt-14-dev wrk nginx-light curl
libespeak-ng-dev espeak-ng-data libmp3lame-dev mpg123
chromium"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The tests' npm packages, each from its package-lock.json, once: the browser
# tests' (playwright-core) and the storage tests' S3 server (@20minutes/s3rver).
npm_one() { # directory, a module that shows it is installed, what it is for
	[ -d "$1/node_modules/$2" ] && return 0
	command -v npm >/dev/null 2>&1 || { echo "deps: npm is missing (Node.js 20)" >&2; return 1; }
	echo "deps: installing the $3 npm packages" >&2
	(cd "$1" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}
npm_deps() {
	npm_one tests/browser playwright-core "browser tests'"
	npm_one tests/s3 @20minutes/s3rver "storage tests'"
}

cd "$(dirname "$0")/.."
if [ -z "$missing" ]; then
	npm_deps
	exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
npm_deps
