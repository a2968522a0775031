#!/usr/bin/env bash
# Greedy build, seed sequence (before_script): find out whether Attic answers, fetch the attic client
# substitution-only, give it the token through a token-file, and start `attic watch-store` in the background.
#
# Runs in its own bash (the template embeds it as `bash -c "$(cat <<'...')"`), so the job shell's `set -e` and
# variables are untouched and nothing here can end the job. It always exits 0: cache trouble never fails a build.
# It writes no Nix setting any other command of the job reads: the build's own downloads (flake inputs,
# cache.nixos.org) keep the image's settings and netrc. Every step is bounded:
#   probe of the Attic endpoint   <= CONNECT_TIMEOUT + STALLED_DOWNLOAD_TIMEOUT + 2 s (a refusal or a
#                                    401 answers at once; an unusable endpoint skips everything below)
#   client fetch, per ref (2)     <= CLIENT_FETCH_TIMEOUT + 2 s (an offline github: ref fails at once)
# The short timeouts are options of those commands only, never of the job.
#
# The token reaches the client as a file (the client config's `token-file`, attic client/src/config.rs) and
# Nix as a netrc, both mode 600 and written by the shell's printf builtin: never argv, never the log.
#
# Inputs (environment):
#   ATTIC_SERVER, ATTIC_CACHE, ATTIC_PUBLIC_KEY, ATTIC_TOKEN   group variables set by the platform (without
#                                                              ATTIC_TOKEN, Attic is a pull source only)
#   GITHUB_TOKEN                                               optional, for github: flake refs
#   GREEDY_ATTIC_CLIENT_REF, GREEDY_ATTIC_FALLBACK_CLIENT_REF  where the client comes from
#   GREEDY_ATTIC_CONNECT_TIMEOUT, GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT, GREEDY_ATTIC_CLIENT_FETCH_TIMEOUT
#   GREEDY_ATTIC_STATE_DIR                                     shared with the build and the teardown
#   RUNNER_SCRIPT_TIMEOUT, RUNNER_AFTER_SCRIPT_TIMEOUT, CI_JOB_TIMEOUT   checked against each other
# Outputs (in GREEDY_ATTIC_STATE_DIR):
#   substituter         "<url> <public key>" when Attic answers (the build's substitution pre-pass reads it)
#   netrc               the image's netrc plus Attic's line (for the commands here and the pre-pass only)
#   attic-client        out-link (GC root) of the fetched client
#   config/attic/, token   the client's config and its token-file, removed by the teardown
#   store-before        the store's entries at the start (the teardown pushes what is new since)
#   watch-store.pid, watch-store.log, host (which container the teardown must run in)
#   status              one line: "publishing", "pull-only: <reason>" or "skipped: <reason>"
set +x
set -uo pipefail
umask 077

state=${GREEDY_ATTIC_STATE_DIR:-/tmp/greedy-attic}
connect_timeout=${GREEDY_ATTIC_CONNECT_TIMEOUT:-5}
stalled_timeout=${GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT:-5}
fetch_timeout=${GREEDY_ATTIC_CLIENT_FETCH_TIMEOUT:-90}
client_ref=${GREEDY_ATTIC_CLIENT_REF:-github:NixOS/nixpkgs/nixos-24.11#attic-client}
fallback_ref=${GREEDY_ATTIC_FALLBACK_CLIENT_REF:-.#attic-client}
server_name=flywheel
nix_features=(--extra-experimental-features 'nix-command flakes')

log() { printf 'greedy-attic: %s\n' "$*"; }

skip() {
  log "cache publication skipped: $*; the build goes on without pushing to Attic"
  printf 'skipped: %s\n' "$*" >"$state/status"
  exit 0
}

# Go durations as GitLab Runner reads RUNNER_*_TIMEOUT ("90s", "5m", "1h30m"); empty when unparsable.
duration_seconds() {
  local rest=$1 total=0 number unit
  [ -n "$rest" ] || return 0
  while [[ $rest =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
    number=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} rest=${BASH_REMATCH[3]}
    case $unit in h) total=$((total + number * 3600)) ;; m) total=$((total + number * 60)) ;; *) total=$((total + number)) ;; esac
  done
  [ -z "$rest" ] && printf '%s' "$total"
}

# Bounded Nix, for this script's own commands: one download attempt, short connect and stall timeouts.
bounded=(
  "${nix_features[@]}"
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

if ! mkdir -p "$state" 2>/dev/null || [ ! -O "$state" ] || ! chmod 700 "$state"; then
  log "cache publication skipped: cannot create a private state directory at $state"
  exit 0
fi
rm -f "$state/substituter" "$state/status"
# The teardown runs in after_script: the same container under the shell and Kubernetes executors, a new one
# under Docker's (then the watcher and the build's store are gone); it compares this.
printf '%s %s\n' "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" "$(uname -n)" >"$state/host"

# GitLab gives after_script time only if RUNNER_SCRIPT_TIMEOUT + RUNNER_AFTER_SCRIPT_TIMEOUT fit in the job's.
script_seconds=$(duration_seconds "${RUNNER_SCRIPT_TIMEOUT:-}")
after_seconds=$(duration_seconds "${RUNNER_AFTER_SCRIPT_TIMEOUT:-}")
if [ -n "$script_seconds" ] && [ -n "$after_seconds" ] && [ -n "${CI_JOB_TIMEOUT:-}" ] &&
  [ $((script_seconds + after_seconds)) -gt "${CI_JOB_TIMEOUT}" ] 2>/dev/null; then
  log "warning: RUNNER_SCRIPT_TIMEOUT ($RUNNER_SCRIPT_TIMEOUT) + RUNNER_AFTER_SCRIPT_TIMEOUT ($RUNNER_AFTER_SCRIPT_TIMEOUT) exceed this job's timeout (${CI_JOB_TIMEOUT} s, the runner's maximum may have lowered it): a timed-out build may get no teardown"
fi

if ! command -v nix >/dev/null 2>&1; then
  skip "nix is not on PATH in this job image"
fi

# --- the Attic endpoint: usable as a substituter (and later as the push target)? -----------------
attic_usable=false
substituter=""
missing=()
for name in ATTIC_SERVER ATTIC_CACHE ATTIC_PUBLIC_KEY; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
if [ "${#missing[@]}" -eq 0 ]; then
  substituter="${ATTIC_SERVER%/}/${ATTIC_CACHE}"
  host=${ATTIC_SERVER#*://}
  host=${host%%/*}
  host=${host%:*}
  # The image's own netrc stays in force for everything; this copy adds Attic's line for our commands only.
  # Nix's netrc-file: the last setting of nix.conf, the user's nix.conf or NIX_CONFIG, else its default.
  image_netrc="${NIX_CONF_DIR:-/etc/nix}/netrc"
  for setting in "$(cat "${NIX_CONF_DIR:-/etc/nix}/nix.conf" 2>/dev/null)" \
    "$(cat "${XDG_CONFIG_HOME:-${HOME:-/}/.config}/nix/nix.conf" 2>/dev/null)" "${NIX_CONFIG:-}"; do
    value=$(printf '%s\n' "$setting" | sed -n 's/^[[:space:]]*netrc-file[[:space:]]*=[[:space:]]*//p' | tail -n 1)
    [ -z "$value" ] || image_netrc=$value
  done
  if [ -r "${image_netrc:-/nonexistent}" ]; then
    cat "$image_netrc" >"$state/netrc"
    printf '\n' >>"$state/netrc"
  else
    : >"$state/netrc"
  fi
  if [ -n "${ATTIC_TOKEN:-}" ]; then
    # Attic takes the token as the password of HTTP Basic auth; printf is a builtin (no argv).
    printf 'machine %s login ci password %s\n' "$host" "$ATTIC_TOKEN" >>"$state/netrc"
  fi
  # A fresh narinfo cache for the probe: Nix would otherwise answer from its disk cache.
  probe_started=$SECONDS probe_clock=${EPOCHREALTIME//[.,]/}
  if probe_error=$(XDG_CACHE_HOME="$state/probe-cache" timeout --kill-after=2 $((connect_timeout + stalled_timeout)) \
    nix store ping --store "$substituter" "${bounded[@]}" --option netrc-file "$state/netrc" 2>&1 >/dev/null); then
    attic_usable=true
    printf '%s %s\n' "$substituter" "$ATTIC_PUBLIC_KEY" >"$state/substituter"
    probe_ms=$(((${EPOCHREALTIME//[.,]/} - probe_clock) / 1000))
    log "Attic cache $substituter answers (probe ${probe_ms} ms): the build substitutes from it first"
  else
    attic_problem="Attic at $substituter does not answer ($(printf '%s\n' "$probe_error" | first_line), after $((SECONDS - probe_started)) s)"
    log "$attic_problem"
  fi
  rm -rf "$state/probe-cache"
else
  attic_problem="${missing[*]} not set in this job"
  log "$attic_problem"
fi

# Nothing to publish to: do not spend time fetching a client.
if [ "$attic_usable" != true ]; then
  skip "$attic_problem"
fi
if [ -z "${ATTIC_TOKEN:-}" ]; then
  log "ATTIC_TOKEN not set in this job: Attic is a pull source only, nothing is pushed"
  printf 'pull-only: ATTIC_TOKEN not set\n' >"$state/status"
  exit 0
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

# --- the client's config: the token in a token-file (config.rs ServerTokenConfig::File) ----------------
export XDG_CONFIG_HOME="$state/config"
mkdir -p "$XDG_CONFIG_HOME/attic"
printf '%s\n' "$ATTIC_TOKEN" >"$state/token"
printf 'default-server = "%s"\n\n[servers.%s]\nendpoint = "%s"\ntoken-file = "%s"\n' \
  "$server_name" "$server_name" "$ATTIC_SERVER" "$state/token" >"$XDG_CONFIG_HOME/attic/config.toml"

# What is in the store now; the teardown pushes whatever valid path appears after this (attic push skips what
# Attic has). A directory listing: no Nix process on the job's critical path.
find /nix/store -mindepth 1 -maxdepth 1 -printf '%f\n' >"$state/store-before" 2>/dev/null || : >"$state/store-before"

"$client" watch-store "$server_name:$ATTIC_CACHE" >"$state/watch-store.log" 2>&1 </dev/null &
watcher=$!
printf '%s\n' "$watcher" >"$state/watch-store.pid"
# Not waited for: a watcher that fails (say, the server refuses the token) is reported by the teardown, which
# pushes the job's new paths either way.
log "publishing: attic watch-store (pid $watcher) pushes finished store paths to $ATTIC_CACHE; log: $state/watch-store.log"
printf 'publishing\n' >"$state/status"
exit 0
