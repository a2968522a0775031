#!/usr/bin/env bash
# Greedy build publication: stop `attic watch-store`, then push every store path that became valid since the
# bootstrap. Runs twice: at the end of greedy:nix-build's script (same container as the build under every
# executor) and in after_script (after failures, timeouts and cancellations; a no-op once the script pushed).
#
# The watcher is stopped at once, never waited for: attic's client has no signal handler (SIGTERM ends it with
# its queue and its in-flight uploads) and logs a path only once uploaded, so no log can tell that it drained.
# Nothing is lost anyway: `attic push` asks Attic which of the new paths it lacks and uploads only those, so
# what the watcher finished costs one query and what it lost is pushed here.
#
# Always exits 0 and never changes the job's result. Bounded: the endpoint probe (connect + stall timeouts),
# 1 s for the watcher, and the push by GREEDY_ATTIC_PUSH_TIMEOUT, cut to what RUNNER_AFTER_SCRIPT_TIMEOUT (read
# now, so a group or project variable that raises or lowers it is honoured) leaves after the steps before it.
#
# Inputs (environment): GREEDY_ATTIC_STATE_DIR (written by attic-bootstrap.sh), ATTIC_SERVER, ATTIC_CACHE,
#   GREEDY_ATTIC_PHASE ("script" or "after_script"), GREEDY_ATTIC_PUSH_TIMEOUT, GREEDY_ATTIC_CONNECT_TIMEOUT,
#   GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT, RUNNER_AFTER_SCRIPT_TIMEOUT (GitLab Runner's default: 5m).
set +x
set -uo pipefail

state=${GREEDY_ATTIC_STATE_DIR:-/tmp/greedy-attic}
phase=${GREEDY_ATTIC_PHASE:-after_script}
push_timeout=${GREEDY_ATTIC_PUSH_TIMEOUT:-120}
connect_timeout=${GREEDY_ATTIC_CONNECT_TIMEOUT:-5}
stalled_timeout=${GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT:-5}
server_name=flywheel
client="$state/attic-client/bin/attic"
nix_features=(--extra-experimental-features 'nix-command flakes')

log() { printf 'greedy-attic: %s\n' "$*"; }

forget_login() { rm -rf "$state/config" "$state/netrc" "$state/token"; }

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

status=$(head -n 1 "$state/status" 2>/dev/null || printf 'skipped: the bootstrap did not run')
case $status in
publishing) ;;
published*)
  forget_login
  exit 0
  ;;
*)
  log "nothing to publish (${status})"
  forget_login
  exit 0
  ;;
esac

if [ "$phase" = after_script ]; then
  here=$(printf '%s %s\n' "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" "$(uname -n)")
  if [ "$here" != "$(cat "$state/host" 2>/dev/null)" ]; then
    # Docker executor: after_script gets a new container; the watcher and the build's store paths stayed behind.
    log "after_script runs in another container than the build (Docker executor?): what the watcher pushed stays in the cache, the rest of this job's build is not published"
    forget_login
    exit 0
  fi
fi

# Whatever the runner allows after_script now, minus a margin for the steps before the push.
budget=$(duration_seconds "${RUNNER_AFTER_SCRIPT_TIMEOUT:-5m}")
budget=${budget:-300}
started=$SECONDS
if [ "$phase" = after_script ]; then
  push_limit=$((budget - (connect_timeout + stalled_timeout + 2) - 1 - 5))
  [ "$push_limit" -lt "$push_timeout" ] && push_timeout=$push_limit
fi

# --- stop the watcher at once ------------------------------------------------------------------------
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
watcher=$(head -n 1 "$state/watch-store.pid" 2>/dev/null || true)
if [ -n "$watcher" ] && alive "$watcher"; then
  kill -TERM "$watcher" 2>/dev/null
  for _ in $(seq 20); do
    alive "$watcher" || break
    sleep 0.05
  done
  alive "$watcher" && kill -KILL "$watcher" 2>/dev/null
  uploaded=$(grep -cE '^[^ ]+ /nix/store/[^ :]+ \(' "$state/watch-store.log" 2>/dev/null) # "<ok> PATH (speed)"
  log "attic watch-store stopped; ${uploaded:-0} paths uploaded by it"
elif [ -n "$watcher" ]; then
  log "attic watch-store had already exited; last line of its log: $(grep -v '^\s*$' "$state/watch-store.log" 2>/dev/null | tail -n 1 | cut -c 1-240)"
fi

# --- what appeared in the store since the bootstrap: valid paths, minus what watch-store skips too --------
mapfile -t candidates < <(find /nix/store -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort | comm -13 <(sort "$state/store-before" 2>/dev/null) - |
  grep -vE '(\.drv|-source|\.lock|\.chroot|\.check)$' | sed 's|^|/nix/store/|')
new_paths=()
if [ "${#candidates[@]}" -gt 0 ]; then
  # a path still being built or cut short by a cancellation is not valid: attic push would refuse it
  declare -A invalid=()
  # paths go through xargs, never one argv: a shared store can gain more paths in one job than ARG_MAX holds
  while read -r path; do invalid[$path]=1; done < <(printf '%s\0' "${candidates[@]}" |
    xargs -0 -r nix-store --check-validity --print-invalid 2>/dev/null)
  for path in "${candidates[@]}"; do [ -n "${invalid[$path]:-}" ] || new_paths+=("$path"); done
fi
if [ "${#new_paths[@]}" -eq 0 ]; then
  log "nothing new in the store since the bootstrap"
else
  # the push (attic push asks Attic which of them it lacks); first, does the endpoint answer at all?
  substituter="${ATTIC_SERVER%/}/${ATTIC_CACHE}"
  if ! XDG_CACHE_HOME="$state/probe-cache" timeout --kill-after=2 $((connect_timeout + stalled_timeout)) nix \
    "${nix_features[@]}" store ping --store "$substituter" --option download-attempts 1 \
    --option connect-timeout "$connect_timeout" --option stalled-download-timeout "$stalled_timeout" \
    --option netrc-file "$state/netrc" >/dev/null 2>&1; then
    rm -rf "$state/probe-cache"
    log "Attic at $substituter does not answer now: nothing pushed at the end (what the watcher uploaded stays)"
    forget_login
    printf 'published: Attic did not answer\n' >"$state/status"
    exit 0
  fi
  rm -rf "$state/probe-cache"
  if [ "$push_timeout" -lt 1 ]; then
    log "no time left to push ${#new_paths[@]} new paths (RUNNER_AFTER_SCRIPT_TIMEOUT=${RUNNER_AFTER_SCRIPT_TIMEOUT:-5m})"
  else
    # xargs splits the paths over as few `attic push` runs as ARG_MAX allows (each asks Attic what it lacks);
    # timeout signals its whole process group, the clients too. Exit: 124/137 timed out, else a push failed
    # (GNU xargs' own 124, "a command exited 255", becomes 123 so that it is not read as the timeout's).
    push() {
      # shellcheck disable=SC2016 # "$@" and $code belong to the inner bash
      printf '%s\0' "${new_paths[@]}" | XDG_CONFIG_HOME="$state/config" timeout --kill-after=2 "$1" \
        bash -c 'xargs -0 -r "$@"; code=$?; [ "$code" -ne 124 ] || code=123; exit "$code"' push \
        "$client" push "$server_name:$ATTIC_CACHE" >"$state/push.log" 2>&1
    }
    push "$push_timeout"
    code=$?
    if [ "$code" -ne 0 ] && grep -qE "is not valid|is required, but there is no substituter" "$state/push.log"; then
      # a path vanished since the listing (a garbage collection on a shared store): the client refuses the
      # whole push, so push once more without it, in the time left
      mapfile -t gone < <(printf '%s\0' "${new_paths[@]}" | xargs -0 -r nix-store --check-validity --print-invalid 2>/dev/null)
      declare -A vanished=()
      for path in "${gone[@]}"; do vanished[$path]=1; done
      kept=()
      for path in "${new_paths[@]}"; do [ -n "${vanished[$path]:-}" ] || kept+=("$path"); done
      new_paths=("${kept[@]}")
      left=$((push_timeout - (SECONDS - started)))
      if [ "${#new_paths[@]}" -gt 0 ] && [ "$left" -gt 0 ]; then
        push "$left"
        code=$?
      fi
    fi
    summary=$(grep -E 'All done|Pushing [0-9]+ paths' "$state/push.log" | tail -n 1 | cut -c 1-240)
    if [ "$code" -eq 0 ]; then
      log "pushed what the watcher had not of ${#new_paths[@]} new paths in $((SECONDS - started)) s: ${summary:-no summary}"
    elif [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
      log "push of ${#new_paths[@]} new paths timed out after ${push_timeout} s (${summary:-before planning}); the build result is unaffected"
    else
      reason=$(grep -v '^\s*$' "$state/push.log" | tail -n 1 | cut -c 1-240)
      log "push of ${#new_paths[@]} new paths failed (exit $code): ${reason:-the client printed nothing}"
    fi
  fi
fi

printf 'published\n' >"$state/status"
forget_login
exit 0
