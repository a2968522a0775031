#!/usr/bin/env bash
# greedy:nix-build's script: substitute what Attic already has (a bounded pre-pass), then build the
# installable with the job's own Nix settings. The exit code is the build's own.
#
# Attic takes part only in the pre-pass (`nix build --max-jobs 0 --keep-going` with Attic as an extra
# substituter and short connect/stall timeouts on that one command). The build itself never talks to Attic, so
# an Attic that dies or hangs mid-build cannot stall or fail it (Nix does not degrade gracefully when a
# substituter dies mid-run: NixOS/nix#6445), and the cache's settings never change how the build fetches
# anything else. A pre-pass cut short only means the build builds more itself.
#
# Inputs (environment): GREEDY_NIX_INSTALLABLE, GREEDY_ATTIC_STATE_DIR (the bootstrap's `substituter` and
#   `netrc`), GREEDY_ATTIC_CONNECT_TIMEOUT, GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT,
#   GREEDY_ATTIC_SUBSTITUTE_TIMEOUT (outer bound of the pre-pass).
set +x
set -uo pipefail

state=${GREEDY_ATTIC_STATE_DIR:-/tmp/greedy-attic}
installable=${GREEDY_NIX_INSTALLABLE:-.#default}
connect_timeout=${GREEDY_ATTIC_CONNECT_TIMEOUT:-5}
stalled_timeout=${GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT:-5}
substitute_timeout=${GREEDY_ATTIC_SUBSTITUTE_TIMEOUT:-600}
nix_features=(--extra-experimental-features 'nix-command flakes')

mkdir -p "$state"
if [ -s "$state/substituter" ]; then
  read -r attic key <"$state/substituter"
  started=$SECONDS
  # negative TTL 0: an earlier job's "not in Attic" answers (cached for an hour) must not hide later pushes
  timeout --kill-after=2 "$substitute_timeout" \
    nix "${nix_features[@]}" build "$installable" --no-link --max-jobs 0 --keep-going \
    --option extra-substituters "$attic" --option extra-trusted-public-keys "$key" \
    --option netrc-file "$state/netrc" --option download-attempts 1 --option narinfo-cache-negative-ttl 0 \
    --option connect-timeout "$connect_timeout" --option stalled-download-timeout "$stalled_timeout" \
    >"$state/substitute.log" 2>&1
  code=$?
  grep -F "copying path" "$state/substitute.log" | grep -F "from '$attic'"
  count=$(grep -F "copying path" "$state/substitute.log" | grep -cF "from '$attic'")
  case $code in
  0) outcome="everything was substitutable" ;;
  124 | 137) outcome="cut short after ${substitute_timeout} s" ;;
  *) outcome="the rest is built" ;;
  esac
  echo "greedy-attic: substituted ${count} paths from Attic in $((SECONDS - started)) s (${outcome})"
fi
nix "${nix_features[@]}" build "$installable" --print-build-logs --out-link result
