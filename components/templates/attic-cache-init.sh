#!/usr/bin/env bash
# Bootstrap one Attic cache through the cache-config API; safe to run on every `pulumi up`.
#
#   POST  /_api/v1/cache-config/$ATTIC_CACHE  create it with the platform's keypair
#         (an existing cache, "CacheAlreadyExists", counts as success)
#   PATCH /_api/v1/cache-config/$ATTIC_CACHE  converge keypair, visibility, priority, upstream keys, retention
#   GET   /_api/v1/cache-config/$ATTIC_CACHE  check the cache now signs with EXPECTED_PUBLIC_KEY
#
# Any other answer fails the run with the server's own message.
# Environment: ATTIC_ENDPOINT (API base URL ending in '/'), ATTIC_CACHE, ATTIC_INIT_DIR (holds `token`,
# `create-cache.json`, `configure-cache.json`), optional EXPECTED_PUBLIC_KEY, ATTIC_RETRIES (default 10),
# ATTIC_RETRY_DELAY (seconds, default 3). The token is only ever copied into a private curl config file.
set -euo pipefail

: "${ATTIC_ENDPOINT:?ATTIC_ENDPOINT must be set}"
: "${ATTIC_CACHE:?ATTIC_CACHE must be set}"
: "${ATTIC_INIT_DIR:?ATTIC_INIT_DIR must be set}"
retries=${ATTIC_RETRIES:-10}
retry_delay=${ATTIC_RETRY_DELAY:-3}

log() { printf 'attic-cache-init: %s\n' "$*"; }
die() {
	printf 'attic-cache-init: error: %s\n' "$*" >&2
	exit 1
}

for file in token create-cache.json configure-cache.json; do
	[[ -r $ATTIC_INIT_DIR/$file ]] || die "missing $ATTIC_INIT_DIR/$file"
done

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Keep the token out of argv (visible in /proc) and out of a `bash -x` trace: it goes from its file straight
# into curl's private config file, never through a shell variable or a command argument.
{
	printf 'header = "Authorization: Bearer '
	tr -d '\r\n' <"$ATTIC_INIT_DIR/token"
	printf '"\n'
} >"$work/curlrc"

url="${ATTIC_ENDPOINT%/}/_api/v1/cache-config/${ATTIC_CACHE}"

# request METHOD [BODY_FILE]: prints the HTTP status; the response body lands in $work/response.
request() {
	local method=$1 body=${2:-}
	local args=(
		--config "$work/curlrc" --silent --show-error
		--request "$method" --output "$work/response" --write-out '%{http_code}'
		--connect-timeout 5 --max-time 30
		--retry "$retries" --retry-delay "$retry_delay" --retry-connrefused
		--header 'Accept: application/json'
	)
	if [[ -n $body ]]; then
		args+=(--header 'Content-Type: application/json' --data-binary "@$body")
	fi
	: >"$work/response"
	curl "${args[@]}" "$url"
}

# The "message" of Attic's JSON error ({"code":..,"error":..,"message":..}); the raw body otherwise.
server_message() {
	local message
	message=$(sed -n 's/.*"message"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/response" | head -n 1)
	if [[ -z $message ]]; then
		message=$(head -c 500 "$work/response")
	fi
	printf '%s' "${message:-<empty response>}"
}

error_kind() {
	sed -n 's/.*"error"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/response" | head -n 1
}

status=$(request POST "$ATTIC_INIT_DIR/create-cache.json") || die "cannot reach $url"
if [[ $status == 2?? ]]; then
	log "created cache '$ATTIC_CACHE'"
elif [[ $status == 400 && $(error_kind) == CacheAlreadyExists ]]; then
	log "cache '$ATTIC_CACHE' already exists; converging its settings"
else
	die "creating cache '$ATTIC_CACHE' failed: HTTP $status: $(server_message)"
fi

status=$(request PATCH "$ATTIC_INIT_DIR/configure-cache.json") || die "cannot reach $url"
[[ $status == 2?? ]] || die "configuring cache '$ATTIC_CACHE' failed: HTTP $status: $(server_message)"
log "configured cache '$ATTIC_CACHE' (keypair, visibility, priority, upstream keys, retention)"

if [[ -n ${EXPECTED_PUBLIC_KEY:-} ]]; then
	status=$(request GET) || die "cannot reach $url"
	[[ $status == 2?? ]] || die "reading cache '$ATTIC_CACHE' failed: HTTP $status: $(server_message)"
	actual=$(sed -n 's/.*"public_key"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/response" | head -n 1)
	[[ $actual == "$EXPECTED_PUBLIC_KEY" ]] ||
		die "cache '$ATTIC_CACHE' signs with '${actual:-<none>}', not the published key '$EXPECTED_PUBLIC_KEY'"
	log "cache '$ATTIC_CACHE' signs with $actual"
fi
