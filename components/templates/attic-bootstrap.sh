#!/usr/bin/env bash
# Greedy build, seed sequence (before_script): make the Attic cache a substituter, fetch the attic
# client substitution-only, log in, and start `attic watch-store` in the background.
#
# Runs in its own bash (the template embeds it as `bash -c "$(cat <<'...')"`), so the job shell's
# `set -e` and variables are untouched and nothing here can end the job. It always exits 0: cache trouble never fails a build.
# Every step is bounded:
#   probe of the Attic endpoint   <= CONNECT_TIMEOUT + STALLED_DOWNLOAD_TIMEOUT + 2 s (a refusal or a
#                                    401 answers at once; an unusable endpoint skips everything below)
#   client fetch, per ref (2)     <= CLIENT_FETCH_TIMEOUT + 2 s (an offline github: ref fails at once)
#   attic login <= 20 s, watcher start check 1 s.
#
# No `set -x` anywhere: ATTIC_TOKEN and GITHUB_TOKEN are in scope. They reach Nix and attic through
# files (mode 600) and the environment, never the log; argv only for an attic client too old to read
# ATTIC_LOGIN_TOKEN (then `attic login` gets it as an argument, as its documentation shows).
#
# Inputs (environment):
#   ATTIC_SERVER, ATTIC_CACHE, ATTIC_PUBLIC_KEY, ATTIC_TOKEN   group variables set by the platform
#   GITHUB_TOKEN                                               optional, for github: flake refs
#   GREEDY_ATTIC_CLIENT_REF, GREEDY_ATTIC_FALLBACK_CLIENT_REF  where the client comes from
#   GREEDY_ATTIC_CONNECT_TIMEOUT, GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT, GREEDY_ATTIC_CLIENT_FETCH_TIMEOUT
#   GREEDY_ATTIC_STATE_DIR                                     shared with the build and the teardown
# Outputs (in GREEDY_ATTIC_STATE_DIR):
#   nix.conf            substituter settings the job's NIX_CONFIG includes (empty when Attic is unusable)
#   attic-client        out-link (GC root) of the fetched client
#   config/attic/       the client's login (token), removed by the teardown
#   watch-store.pid, watch-store.log
#   status              one line: "publishing" or "skipped: <reason>"
set -uo pipefail
umask 077

state=${GREEDY_ATTIC_STATE_DIR:-/tmp/greedy-attic}
connect_timeout=${GREEDY_ATTIC_CONNECT_TIMEOUT:-5}
stalled_timeout=${GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT:-5}
fetch_timeout=${GREEDY_ATTIC_CLIENT_FETCH_TIMEOUT:-90}
client_ref=${GREEDY_ATTIC_CLIENT_REF:-github:NixOS/nixpkgs/nixos-24.11#attic-client}
fallback_ref=${GREEDY_ATTIC_FALLBACK_CLIENT_REF:-.#attic-client}
server_name=flywheel

log() { printf 'greedy-attic: %s\n' "$*"; }

skip() {
  log "cache publication skipped: $*; the build goes on without pushing to Attic"
  printf 'skipped: %s\n' "$*" >"$state/status"
  exit 0
}

# Bounded Nix: one download attempt, short connect and stall timeouts (and an outer `timeout`).
bounded=(
  --extra-experimental-features 'nix-command flakes'
  --option download-attempts 1
  --option connect-timeout "$connect_timeout"
  --option stalled-download-timeout "$stalled_timeout"
)

# GITHUB_TOKEN authenticates github: flake-ref resolution; it goes in through NIX_CONFIG, not argv.
with_github_token() {
  if [ -n "${GITHUB_TOKEN:-}" ]; then
    NIX_CONFIG="${NIX_CONFIG:-}
access-tokens = github.com=${GITHUB_TOKEN}" "$@"
  else
    "$@"
  fi
}

first_line() { head -n 1 | cut -c 1-240; }

# Alive and not a zombie.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

if ! mkdir -p "$state" 2>/dev/null || [ ! -O "$state" ] || ! chmod 700 "$state"; then
  log "cache publication skipped: cannot create a private state directory at $state"
  exit 0
fi
: >"$state/nix.conf"

if ! command -v nix >/dev/null 2>&1; then
  skip "nix is not on PATH in this job image"
fi

# --- the Attic endpoint: usable as a substituter (and later as the push target)? -----------------
attic_usable=false
substituter=""
missing=()
for name in ATTIC_SERVER ATTIC_CACHE ATTIC_PUBLIC_KEY ATTIC_TOKEN; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
if [ "${#missing[@]}" -eq 0 ]; then
  substituter="${ATTIC_SERVER%/}/${ATTIC_CACHE}"
  host=${ATTIC_SERVER#*://}
  host=${host%%/*}
  host=${host%:*}
  # Attic takes the token as the password of HTTP Basic auth; printf is a builtin (no argv).
  printf 'machine %s login ci password %s\n' "$host" "$ATTIC_TOKEN" >"$state/netrc"
  # A fresh narinfo cache for the probe: Nix would otherwise answer from its disk cache.
  probe_started=$SECONDS
  if probe_error=$(XDG_CACHE_HOME="$state/probe-cache" timeout --kill-after=2 $((connect_timeout + stalled_timeout)) \
    nix store ping --store "$substituter" "${bounded[@]}" --option netrc-file "$state/netrc" 2>&1 >/dev/null); then
    attic_usable=true
    # For the build: Attic as a substituter; if it dies mid-build, short timeouts bound the stall
    # (once per nix invocation: download-attempts x stalled-download-timeout) and fallback = true
    # builds what it can no longer download instead of failing.
    {
      printf 'extra-substituters = %s\n' "$substituter"
      printf 'extra-trusted-public-keys = %s\n' "$ATTIC_PUBLIC_KEY"
      printf 'netrc-file = %s\n' "$state/netrc"
      printf 'connect-timeout = %s\n' "$connect_timeout"
      printf 'stalled-download-timeout = %s\n' "$stalled_timeout"
      printf 'fallback = true\n'
    } >"$state/nix.conf"
    log "Attic cache $substituter answers: added as a substituter"
  else
    attic_problem="Attic at $substituter does not answer ($(printf '%s\n' "$probe_error" | first_line), after $((SECONDS - probe_started)) s)"
    log "$attic_problem"
  fi
  rm -rf "$state/probe-cache"
else
  attic_problem="${missing[*]} not set in this job"
  log "$attic_problem"
fi

# --- the client: substituted, never built (--max-jobs 0) ------------------------------------------
fetch_client() { # ref, extra nix args...
  local ref=$1
  shift
  local started=$SECONDS output
  if output=$(with_github_token timeout --kill-after=2 "$fetch_timeout" \
    nix build "$ref" --max-jobs 0 --out-link "$state/attic-client" "${bounded[@]}" "$@" 2>&1); then
    log "attic client from $ref (substituted in $((SECONDS - started)) s)"
    return 0
  fi
  log "attic client not available from $ref after $((SECONDS - started)) s: $(printf '%s\n' "$output" | grep -m 1 -i error | cut -c 1-240)"
  return 1
}

# Nothing to publish to: do not spend time fetching a client.
if [ "$attic_usable" != true ]; then
  skip "$attic_problem"
fi

client=""
if fetch_client "$client_ref"; then
  client="$state/attic-client/bin/attic"
elif fetch_client "$fallback_ref" --option extra-substituters "$substituter" \
  --option extra-trusted-public-keys "$ATTIC_PUBLIC_KEY" --option netrc-file "$state/netrc"; then
  client="$state/attic-client/bin/attic"
fi
if [ -z "$client" ]; then
  skip "no attic client could be substituted from $client_ref or $fallback_ref"
fi
if [ ! -x "$client" ]; then
  skip "the client from $client_ref has no bin/attic"
fi

# --- log in (token from the environment, not argv) and start the watcher --------------------------
export XDG_CONFIG_HOME="$state/config"
mkdir -p "$XDG_CONFIG_HOME"
login() { ATTIC_LOGIN_TOKEN="$ATTIC_TOKEN" timeout 20 "$client" login "$server_name" "$ATTIC_SERVER" --set-default "$@" 2>&1; }
if ! login_output=$(login); then
  skip "attic login failed: $(printf '%s\n' "${login_output//"$ATTIC_TOKEN"/[masked]}" | tail -n 1 | cut -c 1-240)"
fi
# Clients older than ATTIC_LOGIN_TOKEN support store no token: then (only then) pass it as an argument.
if ! grep -q '^token' "$XDG_CONFIG_HOME/attic/config.toml" 2>/dev/null; then
  if ! login_output=$(login "$ATTIC_TOKEN"); then
    skip "attic login failed: $(printf '%s\n' "${login_output//"$ATTIC_TOKEN"/[masked]}" | tail -n 1 | cut -c 1-240)"
  fi
  log "this attic client ignores ATTIC_LOGIN_TOKEN: logged in with the token as an argument"
fi

"$client" watch-store "$server_name:$ATTIC_CACHE" >"$state/watch-store.log" 2>&1 </dev/null &
watcher=$!
printf '%s\n' "$watcher" >"$state/watch-store.pid"
sleep 1
if ! alive "$watcher"; then
  wait "$watcher"
  skip "attic watch-store exited at once (exit $?): $(tail -n 1 "$state/watch-store.log" | cut -c 1-240)"
fi
printf 'publishing\n' >"$state/status"
log "publishing: attic watch-store (pid $watcher) pushes every finished store path to $ATTIC_CACHE; log: $state/watch-store.log"
exit 0
