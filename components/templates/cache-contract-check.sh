#!/bin/sh
# The cache contract of a Bazel job: it runs only against the shared remote cache the flywheel runners
# inject. When the contract is broken it fails loudly, naming the variable; it never lets the build
# fall back silently to a local, uncached mode.
#
# Inputs (environment): BAZEL_REMOTE_CACHE and GF_BAZEL_SUBSTRATE_MODE (injected by the runner; a
# group or project variable with the same name would override them), GREEDY_EXPECTED_SUBSTRATE_MODE.
# POSIX sh: it runs in whatever shell the job image has.
set +x
expected=${GREEDY_EXPECTED_SUBSTRATE_MODE:-shared-cache-backed}
broken=0

if [ -z "${BAZEL_REMOTE_CACHE:-}" ]; then
  echo "cache contract BROKEN: BAZEL_REMOTE_CACHE is not set. This job must run on a flywheel runner that injects the shared bazel-remote endpoint; refusing to build without it (no silent local fallback)." >&2
  broken=1
fi
if [ "${GF_BAZEL_SUBSTRATE_MODE:-}" != "$expected" ]; then
  echo "cache contract BROKEN: GF_BAZEL_SUBSTRATE_MODE is '${GF_BAZEL_SUBSTRATE_MODE:-<unset>}', expected '$expected'. This job must run on a flywheel runner with the shared cache substrate; refusing to build in local mode." >&2
  broken=1
fi
if [ "$broken" -ne 0 ]; then
  exit 1
fi
echo "cache contract: BAZEL_REMOTE_CACHE=$BAZEL_REMOTE_CACHE GF_BAZEL_SUBSTRATE_MODE=$GF_BAZEL_SUBSTRATE_MODE"
