#!/bin/bash
# attic -- STAND-IN for the attic client, for tests on a machine without network access. Not Attic.
#
# It has attic's command line for the three commands the greedy CI bootstrap uses, implemented over
# `nix copy --to <endpoint>/<cache>` (an HTTP binary cache that accepts PUT, like tools/nix_lab.py's
# LoopbackCache):
#   attic login NAME ENDPOINT [TOKEN] [--set-default]   token also from ATTIC_LOGIN_TOKEN (as attic does)
#   attic watch-store [NAME:]CACHE                     push every new valid store path; SIGINT/SIGTERM
#                                                      drains the queue, then exits 0
#   attic push [NAME:]CACHE PATH...                    push the closures of PATHs
# Real Attic signs on the server with the cache's key; the stand-in signs before uploading with the
# key file baked in at build time (@signingKeyFile@, may be empty = unsigned).
# Fault injection for tests (STANDIN_ATTIC_FAULT): crash-after-push:TEXT (the watcher dies with SIGKILL
# right after pushing a path whose name contains TEXT), ignore-stop (it ignores SIGINT/SIGTERM),
# ignore-stop-and-hang (it ignores them and pushes nothing), old-login (login ignores ATTIC_LOGIN_TOKEN).
set -euo pipefail

export PATH="@nixBin@:$PATH"
signing_key_file="@signingKeyFile@"
config_file="${XDG_CONFIG_HOME:-$HOME/.config}/attic/config.toml"
nix_flags=(--extra-experimental-features nix-command)

die() {
  printf 'attic (stand-in): error: %s\n' "$*" >&2
  exit 1
}

config_value() { # key -> value from the stand-in's one-server config
  [ -f "$config_file" ] || die "not logged in (no $config_file)"
  sed -n "s/^$1 = \"\\(.*\\)\"\$/\\1/p" "$config_file" | head -n 1
}

cmd_login() {
  local name="" endpoint="" token="${ATTIC_LOGIN_TOKEN:-}" arg
  if [ "${STANDIN_ATTIC_FAULT:-}" = old-login ]; then
    token="" # like attic clients older than ATTIC_LOGIN_TOKEN support
  fi
  for arg in "$@"; do
    case $arg in
    --set-default) ;;
    *)
      if [ -z "$name" ]; then
        name=$arg
      elif [ -z "$endpoint" ]; then
        endpoint=$arg
      else
        token=$arg
      fi
      ;;
    esac
  done
  if [ -z "$name" ] || [ -z "$endpoint" ]; then
    die "usage: attic login NAME ENDPOINT [TOKEN]"
  fi
  mkdir -p "$(dirname "$config_file")"
  (
    umask 077
    {
      printf 'default-server = "%s"\n\n[servers.%s]\n' "$name" "$name"
      printf 'endpoint = "%s"\n' "$endpoint"
      [ -z "$token" ] || printf 'token = "%s"\n' "$token"
    } >"$config_file"
  )
  printf '✍️ Configuring server "%s"\n' "$name" >&2
}

target_url() { # [NAME:]CACHE -> <endpoint>/<cache>
  local cache=${1#*:}
  local endpoint
  endpoint=$(config_value endpoint)
  [ -n "$endpoint" ] || die "no endpoint configured"
  printf '%s/%s' "${endpoint%/}" "$cache"
}

netrc_file=""
make_netrc() {
  local token endpoint host
  token=$(config_value token)
  endpoint=$(config_value endpoint)
  host=${endpoint#*://}
  host=${host%%/*}
  host=${host%:*}
  netrc_file=$(mktemp)
  printf 'machine %s password %s\n' "$host" "$token" >"$netrc_file"
}

upload() { # url paths...
  local url=$1
  shift
  if [ -n "$signing_key_file" ]; then
    nix "${nix_flags[@]}" store sign --recursive --key-file "$signing_key_file" "$@"
  fi
  # Bounded (a hung upload would hold temporary GC roots on store paths other tests share).
  nix "${nix_flags[@]}" copy --to "$url" --option netrc-file "$netrc_file" --option connect-timeout 5 \
    --option stalled-download-timeout 5 --option download-attempts 2 "$@"
}

cmd_push() {
  [ "$#" -ge 2 ] || die "usage: attic push CACHE PATH..."
  local url
  url=$(target_url "$1")
  shift
  make_netrc
  trap 'rm -f "$netrc_file"' EXIT
  local count
  count=$(nix "${nix_flags[@]}" path-info --recursive "$@" | wc -l)
  printf '⚙️ Pushing %s paths to %s\n' "$count" "$url"
  upload "$url" "$@"
  printf '✅ pushed %s paths\n' "$count"
}

cmd_watch_store() {
  [ "$#" -eq 1 ] || die "usage: attic watch-store CACHE"
  local url
  url=$(target_url "$1")
  make_netrc
  trap 'rm -f "$netrc_file"' EXIT
  local stop=false fault=${STANDIN_ATTIC_FAULT:-} pushed=0
  case $fault in
  ignore-stop*) trap '' INT TERM ;;
  *) trap 'stop=true' INT TERM ;;
  esac
  declare -A seen=()
  local entry
  for entry in /nix/store/*; do seen[$entry]=1; done
  local pending=()
  printf '👀 Pushing new store paths to %s ...\n' "$url"
  while :; do
    for entry in /nix/store/*; do
      [ -z "${seen[$entry]:-}" ] || continue
      case $entry in
      *.drv | *.lock | *-source | *.chroot) seen[$entry]=1 ;;
      *) pending+=("$entry") && seen[$entry]=1 ;;
      esac
    done
    local waiting=()
    for entry in "${pending[@]}"; do
      if [ "$fault" = ignore-stop-and-hang ]; then
        waiting+=("$entry")
      elif nix-store --check-validity "$entry" 2>/dev/null; then
        if upload "$url" "$entry" 2>>"${STANDIN_ATTIC_ERRLOG:-/dev/stderr}"; then
          printf '✅ %s\n' "$entry"
          pushed=$((pushed + 1))
          case $fault in
          crash-after-push:?*) [[ $entry != *"${fault#crash-after-push:}"* ]] || kill -KILL $$ ;;
          esac
        else
          printf '❌ %s: upload failed\n' "$entry"
        fi
      elif [ -e "$entry" ]; then
        waiting+=("$entry") # still being built
      fi
    done
    pending=("${waiting[@]}")
    if [ "$stop" = true ]; then # this pass pushed every finished path: the queue is drained
      printf '🛑 stopped: %s paths pushed, queue drained (%s unfinished paths left)\n' "$pushed" "${#pending[@]}"
      exit 0
    fi
    sleep 0.3
  done
}

command=${1:-}
[ "$#" -eq 0 ] || shift
case $command in
login) cmd_login "$@" ;;
push) cmd_push "$@" ;;
watch-store) cmd_watch_store "$@" ;;
*) die "the stand-in implements login, watch-store and push (got '${command}')" ;;
esac
