#!/usr/bin/env bash
# greedy:nix-build's script: build the installable (with Attic as a substituter when the bootstrap
# found it usable). If the build fails on the Attic cache and Attic no longer answers, build once more
# without it (a failure of the build itself is never retried):
# Nix does not degrade gracefully when a substituter dies mid-run (NixOS/nix#6445; Nix 2.8 can even
# abort with "substituter ... is disabled"), and cache trouble must never fail a build. The exit code
# is the build's own: the retry's when there was one.
#
# Inputs (environment): GREEDY_NIX_INSTALLABLE, GREEDY_ATTIC_STATE_DIR, ATTIC_SERVER, ATTIC_CACHE,
#   GREEDY_ATTIC_CONNECT_TIMEOUT, GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT.
set -uo pipefail

state=${GREEDY_ATTIC_STATE_DIR:-/tmp/greedy-attic}
installable=${GREEDY_NIX_INSTALLABLE:-.#default}
connect_timeout=${GREEDY_ATTIC_CONNECT_TIMEOUT:-5}
stalled_timeout=${GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT:-5}

substituter="${ATTIC_SERVER:-}"
substituter="${substituter%/}/${ATTIC_CACHE:-}"

build() {
  nix --extra-experimental-features 'nix-command flakes' build "$installable" --print-build-logs --out-link result \
    2>&1 | tee "$state/build.log"
}

attic_answers() {
  XDG_CACHE_HOME="$state/probe-cache" timeout --kill-after=2 $((connect_timeout + stalled_timeout)) nix \
    --extra-experimental-features 'nix-command flakes' store ping --store "$substituter" \
    --option download-attempts 1 --option connect-timeout "$connect_timeout" \
    --option stalled-download-timeout "$stalled_timeout" --option netrc-file "$state/netrc" >/dev/null 2>&1
  local answered=$?
  rm -rf "$state/probe-cache"
  return "$answered"
}

# Did the failure come from the cache (an error naming the Attic substituter, or Nix aborting)?
failed_on_attic() {
  grep -F "$substituter" "$state/build.log" | grep -qiE 'error|disabled' ||
    grep -q '^terminate called' "$state/build.log"
}

mkdir -p "$state"
build
code=$?
if [ "$code" -eq 0 ] || [ ! -s "$state/nix.conf" ] || ! failed_on_attic || attic_answers; then
  exit "$code"
fi
echo "greedy-attic: the build failed (exit $code) on the Attic cache, which no longer answers: building once more without it"
: >"$state/nix.conf" # the job's NIX_CONFIG includes this file: now without the Attic substituter
build
exit $?
