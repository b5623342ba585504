#!/usr/bin/env bash
# softhsm-setup.sh — create a throwaway SoftHSM2 token for the PKCS#11 keystore tests.
#
# Usage: eval "$(.ci/softhsm-setup.sh [DIR])"
#
# Installs softhsm2 and opensc with apt-get when softhsm2-util is missing, creates
# DIR (default: a fresh mktemp directory) holding a token directory, a softhsm2.conf
# and a PIN file (0600), initialises a token labelled "securelog-test" (user PIN 1234,
# SO PIN 5678) and prints `export` lines on stdout. Everything else goes to stderr,
# so the output can be eval'ed. The slot id changes after initialisation: consumers
# find the token by its label, never by slot number.
#
# Exits non-zero, printing nothing on stdout, whenever it could not provide a
# working token (softhsm2 missing and not installable by this user, apt-get
# failing, token initialisation failing). Callers should capture the output
# first (env="$(bash .ci/softhsm-setup.sh)" && eval "$env"), because
# eval "$(…)" alone ignores the script's exit status.
set -euo pipefail

TOKEN_LABEL="${SECURELOG_TEST_TOKEN_LABEL:-securelog-test}"
USER_PIN="1234"
SO_PIN="5678"
MODULE="/usr/lib/softhsm/libsofthsm2.so"

log() { printf 'softhsm-setup: %s\n' "$*" >&2; }

if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -e "$MODULE" ]; then
	log "installing softhsm2 and opensc"
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			SUDO="sudo"
		else
			log "softhsm2 is not installed and this user cannot install it (not root, no sudo)"
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! $SUDO apt-get install -y softhsm2 opensc >&2; then
		$SUDO apt-get update >&2
		$SUDO apt-get install -y softhsm2 opensc >&2
	fi
fi
if [ ! -e "$MODULE" ]; then
	log "PKCS#11 module $MODULE not found after installing softhsm2"
	exit 1
fi

DIR="${1:-}"
if [ -z "$DIR" ]; then
	DIR="$(mktemp -d "${TMPDIR:-/tmp}/securelog-softhsm.XXXXXX")"
fi
mkdir -p "$DIR"
# Throwaway: a re-run into the same DIR starts from an empty token directory, so
# the label stays unique.
rm -rf "$DIR/tokens"
mkdir -p "$DIR/tokens"
DIR="$(cd "$DIR" && pwd -P)"

CONF="$DIR/softhsm2.conf"
cat >"$CONF" <<EOF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF

PIN_FILE="$DIR/user-pin"
(umask 077 && printf '%s\n' "$USER_PIN" >"$PIN_FILE")
chmod 600 "$PIN_FILE"

export SOFTHSM2_CONF="$CONF"
softhsm2-util --init-token --free --label "$TOKEN_LABEL" --pin "$USER_PIN" --so-pin "$SO_PIN" >&2
if ! softhsm2-util --show-slots 2>/dev/null | grep -Eq "Label: +$TOKEN_LABEL *\$"; then
	log "token '$TOKEN_LABEL' is not listed by softhsm2-util --show-slots after initialisation"
	exit 1
fi
log "token '$TOKEN_LABEL' ready in $DIR"

q() { printf '%q' "$1"; }
echo "export SOFTHSM2_CONF=$(q "$CONF")"
echo "export SECURELOG_PKCS11_MODULE=$(q "$MODULE")"
echo "export SECURELOG_PKCS11_TOKEN=$(q "$TOKEN_LABEL")"
echo "export SECURELOG_PKCS11_PIN_FILE=$(q "$PIN_FILE")"
