#!/usr/bin/env bash
# Greedy build teardown (after_script; GitLab runs it after success, failure and cancellation): let
# `attic watch-store` drain and stop it, push the build's result closure, say what was pushed.
#
# Always exits 0 and never changes the job's result. Bounded: at most GREEDY_ATTIC_DRAIN_TIMEOUT + 2 s
# for the watcher, the endpoint probe (connect + stall timeouts) and GREEDY_ATTIC_PUSH_TIMEOUT + 2 s
# for the push. When the endpoint does not answer, the watcher is stopped at once and the push skipped.
# No `set -x`: the login (with the token) is in scope; it is deleted at the end.
#
# Inputs (environment): GREEDY_ATTIC_STATE_DIR (written by attic-bootstrap.sh), ATTIC_CACHE,
#   GREEDY_ATTIC_DRAIN_TIMEOUT, GREEDY_ATTIC_PUSH_TIMEOUT, GREEDY_ATTIC_CONNECT_TIMEOUT,
#   GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT, GREEDY_ATTIC_QUIET_SECONDS (watcher idle this long =
#   drained; default 2), GREEDY_ATTIC_RESULT_DIR (where `result*` out-links are; default
#   CI_PROJECT_DIR or the working directory), GREEDY_ATTIC_PUSH_PATHS (extra store paths, spaces).
set -uo pipefail

state=${GREEDY_ATTIC_STATE_DIR:-/tmp/greedy-attic}
drain_timeout=${GREEDY_ATTIC_DRAIN_TIMEOUT:-60}
push_timeout=${GREEDY_ATTIC_PUSH_TIMEOUT:-120}
connect_timeout=${GREEDY_ATTIC_CONNECT_TIMEOUT:-5}
stalled_timeout=${GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT:-5}
quiet_seconds=${GREEDY_ATTIC_QUIET_SECONDS:-2}
result_dir=${GREEDY_ATTIC_RESULT_DIR:-${CI_PROJECT_DIR:-$PWD}}
server_name=flywheel
client="$state/attic-client/bin/attic"

log() { printf 'greedy-attic: %s\n' "$*"; }

forget_login() { rm -rf "$state/config" "$state/netrc"; }

status=$(head -n 1 "$state/status" 2>/dev/null || printf 'skipped: the bootstrap did not run')
if [ "$status" != publishing ]; then
  log "nothing to publish (${status})"
  forget_login
  exit 0
fi
export XDG_CONFIG_HOME="$state/config"

# Alive and not a zombie (an orphaned watcher is reaped by PID 1, which in some containers never does).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Wait until $1 exits or $2 seconds pass; true if it exited.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while alive "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
  return 0
}

# The watcher's log size, to tell a busy watcher from an idle one.
log_size() { wc -c <"$state/watch-store.log" 2>/dev/null || printf '0'; }

endpoint_answers() {
  local substituter="${ATTIC_SERVER%/}/${ATTIC_CACHE}"
  XDG_CACHE_HOME="$state/probe-cache" timeout --kill-after=2 $((connect_timeout + stalled_timeout)) nix \
    --extra-experimental-features 'nix-command flakes' store ping --store "$substituter" \
    --option download-attempts 1 --option connect-timeout "$connect_timeout" \
    --option stalled-download-timeout "$stalled_timeout" --option netrc-file "$state/netrc" >/dev/null 2>&1
  local answered=$?
  rm -rf "$state/probe-cache"
  return "$answered"
}

# --- the endpoint: if it does not answer, nothing can drain and nothing can be pushed -------------
healthy=true
if ! endpoint_answers; then
  healthy=false
  log "Attic at ${ATTIC_SERVER%/}/${ATTIC_CACHE} does not answer now: stopping the watcher without draining, skipping the push"
fi

# --- stop the watcher: wait for it to go idle (its queue lives only in memory), then SIGTERM ------
watcher=$(head -n 1 "$state/watch-store.pid" 2>/dev/null || true)
started=$SECONDS
if [ -z "$watcher" ] || ! alive "$watcher"; then
  log "attic watch-store had already exited (crashed?); last line of its log: $(tail -n 1 "$state/watch-store.log" 2>/dev/null | cut -c 1-240)"
else
  deadline=$((SECONDS + drain_timeout))
  if [ "$healthy" = true ]; then
    size=$(log_size)
    quiet_polls=0
    while [ "$SECONDS" -lt "$deadline" ] && [ "$quiet_polls" -lt $((quiet_seconds * 4)) ]; do
      sleep 0.25
      now=$(log_size)
      if [ "$now" = "$size" ]; then
        quiet_polls=$((quiet_polls + 1))
      else
        size=$now
        quiet_polls=0
      fi
    done
  fi
  kill -TERM "$watcher" 2>/dev/null
  remaining=$((deadline - SECONDS))
  if [ "$healthy" != true ] || [ "$remaining" -lt 2 ]; then
    remaining=2
  fi
  if wait_exit "$watcher" "$remaining"; then
    log "attic watch-store stopped after $((SECONDS - started)) s"
  else
    kill -KILL "$watcher" 2>/dev/null
    log "attic watch-store did not stop within $((SECONDS - started)) s: killed (paths still in its queue are covered by the push below only if they are in the result closure)"
  fi
fi

# --- push the result closure (bounded) ------------------------------------------------------------
if [ "$healthy" = true ]; then
  paths=()
  for link in "$result_dir"/result "$result_dir"/result-*; do
    [ -L "$link" ] && [ -e "$link" ] && paths+=("$(readlink -f "$link")")
  done
  for extra in ${GREEDY_ATTIC_PUSH_PATHS:-}; do
    [ -e "$extra" ] && paths+=("$extra")
  done
  if [ "${#paths[@]}" -eq 0 ]; then
    log "no result out-link to push (the build did not finish); what the watcher pushed stays in the cache"
  else
    count=$(nix --extra-experimental-features 'nix-command flakes' path-info --recursive "${paths[@]}" 2>/dev/null | wc -l)
    started=$SECONDS
    if timeout --kill-after=2 "$push_timeout" "$client" push "$server_name:$ATTIC_CACHE" "${paths[@]}" >"$state/push.log" 2>&1; then
      log "pushed the result closure to $ATTIC_CACHE: ${count} paths (already cached ones skipped) in $((SECONDS - started)) s"
    else
      code=$?
      if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
        log "push of the result closure (${count} paths) timed out after ${push_timeout} s; the build result is unaffected"
      else
        log "push of the result closure (${count} paths) failed (exit $code): $(tail -n 1 "$state/push.log" | cut -c 1-240)"
      fi
    fi
  fi
fi

forget_login
exit 0
