#!/bin/bash
# attic -- STAND-IN for the attic client (zhaofengli/attic `client/`), for tests without network access.
# Not Attic: the real client needs libnixstore >= 2.24 and this machine has Nix 2.8. See lab/attic/README.md.
#
# Modelled on zhaofengli/attic client source as stored in the project's source index, read at these commits (each
# the stored version of its file, not one tree): client/src/config.rs@07147da7, main.rs@45d904ed,
# command/login.rs@d6c4d883 (older than the token-file change, see cmd_login), api/mod.rs@01d6c4ea,
# command/watch_store.rs@08360fcb, command/push.rs@014fb92a, push.rs@085e4c5d.
# The template fetches github:NixOS/nixpkgs/nixos-24.11#attic-client. A stored NixOS/nixpkgs copy of
# pkgs/by-name/at/attic-client/package.nix, at nixpkgs commit e9ab2a06, has version "0-unstable-2024-11-10",
# src.rev 47752427561f1c34debb16728a210d378f0ece36: the likely 24.11 package, NOT confirmed (the index does not say
# which branch e9ab2a06 is on, nor whether 24.11 later moved; other copies read carry 2024-08 and 2025 revs).
# The stored attic has none of the files cited here at 47752427, so this source was not checked at that rev.
# It models only what that source does, for the three commands the greedy CI template uses:
#   attic login NAME ENDPOINT [TOKEN] [--set-default]
#   attic push [NAME:]CACHE PATH...
#   attic watch-store [NAME:]CACHE
# and none of what that source lacks: no ATTIC_LOGIN_TOKEN (login.rs@d6c4d883), no signal handler (SIGTERM ends watch-store at
# once, its queue and in-flight uploads lost), a path is logged only after its upload finished.
#
# The server side is nix_lab.LoopbackCache: the client asks it `GET /_api/v1/cache-config/{cache}` and
# `POST /_api/v1/get-missing-paths` as attic's api/mod.rs does; the upload itself (attic's `PUT
# /_api/v1/upload-path`) is `nix copy --to <endpoint>/<cache>`, signed here with the key baked in at build
# time (@signingKeyFile@; real Attic signs on the server with the cache's key).
#
# Fault injection for tests (STANDIN_ATTIC_FAULT), each a state the real client can be in, never a feature:
#   upload-delay:SECONDS     every upload takes SECONDS longer (a slow link: uploads are in flight longer)
#   upload-hang              uploads never finish (a stuck connection)
#   crash-after-push:TEXT    watch-store dies (SIGKILL) right after uploading a path whose name has TEXT
set -uo pipefail

export PATH="@nixBin@:$PATH"
signing_key_file="@signingKeyFile@"
# client/src/config.rs@07147da7:221-226 get_config_path: $XDG_CONFIG_HOME/attic/config.toml (xdg crate).
config_file="${XDG_CONFIG_HOME:-$HOME/.config}/attic/config.toml"
nix_flags=(--extra-experimental-features nix-command)
fault=${STANDIN_ATTIC_FAULT:-}

# anyhow's `Result` from main prints "Error: <message>" and exits 1 (client/src/main.rs@45d904ed:29-33 main; Rust
# prints the error's Debug form, so anyhow's "Caused by:" chain follows a context message; left out here).
die() {
  printf 'Error: %s\n' "$*" >&2
  exit 1
}

# --- client/src/config.rs@07147da7 ------------------------------------------------------------------
# ConfigData: `default-server` and `[servers.NAME]` (lines 39-49); ServerConfig: `endpoint` plus a token
# flattened from ServerTokenConfig, untagged: `token = "..."` (Raw) or `token-file = "..."` (File), the file
# read and trimmed (lines 51-88). This reader handles one-line `key = "value"` TOML, as the client writes it.
toml_value() { # section key
  sed -n "/^\[$1\]\$/,/^\[/{s/^$2 = \"\\(.*\\)\"\$/\\1/p}" "$config_file" | head -n 1
}

default_server() { # config.rs:163-177: the default-server, else the first server, else an error
  local name
  name=$(sed -n 's/^default-server = "\(.*\)"$/\1/p' "$config_file" | head -n 1)
  if [ -z "$name" ]; then
    name=$(sed -n 's/^\[servers\.\(.*\)\]$/\1/p' "$config_file" | head -n 1)
  fi
  [ -n "$name" ] || die "No servers are available."
  printf '%s' "$name"
}

server="" cache="" endpoint="" token=""
resolve_cache() { # [NAME:]CACHE (config.rs:179-196 resolve_cache)
  [ -f "$config_file" ] || die "No servers are available."
  if [[ $1 == *:* ]]; then
    server=${1%%:*} cache=${1#*:}
    grep -q "^\[servers\.$server\]\$" "$config_file" || die "Server \"$server\" does not exist"
  else
    server=$(default_server) cache=$1
  fi
  endpoint=$(toml_value "servers\\.$server" endpoint)
  token=$(toml_value "servers\\.$server" token)
  local token_file
  token_file=$(toml_value "servers\\.$server" token-file)
  if [ -z "$token" ] && [ -n "$token_file" ]; then
    token=$(<"$token_file") || die "Failed to read token from $token_file"
    token="${token#"${token%%[![:space:]]*}"}" # config.rs:84 `.trim()`
    token="${token%"${token##*[![:space:]]}"}"
  fi
}

# --- the API (client/src/api/mod.rs@01d6c4ea): build_http_client 235-249 ("bearer <token>" header, 241),
# get_cache_config 80-95, get_missing_paths 149-169, JSON bodies ------------------------------------------
curl_config="" netrc_file=""
open_session() {
  curl_config=$(mktemp) netrc_file=$(mktemp)
  chmod 600 "$curl_config" "$netrc_file"
  if [ -n "$token" ]; then
    printf 'header = "Authorization: Bearer %s"\n' "$token" >"$curl_config"
    local host=${endpoint#*://}
    host=${host%%/*}
    printf 'machine %s password %s\n' "${host%:*}" "$token" >"$netrc_file"
  fi
  trap 'rm -f "$curl_config" "$netrc_file"' EXIT
}

api() { # method path [json body] -> response body; "Error: ..." on a failed request, as ApiError does
  local output status
  output=$(curl -sS --config "$curl_config" -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} \
    -w '\n%{http_code}' "${endpoint%/}/$2" 2>&1) || die "error sending request for url (${endpoint%/}/$2): ${output##*curl: }"
  status=${output##*$'\n'}
  output=${output%$'\n'*}
  if [[ $status != 2* ]]; then
    # api/mod.rs@01d6c4ea:45-53 ApiError: a JSON body is Structured, shown "{error}: {message}" (its Display
    # impl); any other body is Unstructured, "HTTP {status}: {text}" (reqwest also names the reason phrase,
    # "403 Forbidden", which this stand-in leaves out)
    local structured
    structured=$(printf '%s' "$output" | jq -er '"\(.error): \(.message)"' 2>/dev/null) ||
      structured="HTTP $status: $(printf '%s' "$output" | head -c 200)"
    die "$structured"
  fi
  printf '%s' "$output"
}

upstream_keys=()
get_cache_config() { # watch_store.rs@08360fcb:57-58, command/push.rs@014fb92a:151-152 (run): "Confirm remote cache validity"
  local config
  config=$(api GET "_api/v1/cache-config/$cache") || exit 1
  mapfile -t upstream_keys < <(printf '%s' "$config" | jq -r '.upstream_cache_key_names // [] | .[]')
}

# --- the push plan (client/src/push.rs@085e4c5d:371-461 PushPlan::plan) ----------------------------------
# Closure of the roots (380-405), minus paths signed by one of the cache's upstream_cache_key_names (417-434),
# minus what the server reports present through POST /_api/v1/get-missing-paths (446-453); counts 455-460.
# Prints the missing paths; sets counts.
num_all=0 num_cached=0 num_upstream=0
plan() { # paths...
  local closure=() kept=() line path sig name skip listing
  # an invalid root fails the plan, as the store's closure computation does
  listing=$(nix "${nix_flags[@]}" path-info --recursive "$@") || die "path-info of the roots failed"
  mapfile -t closure <<<"$listing"
  num_all=${#closure[@]} num_cached=0 num_upstream=0
  [ "$num_all" -gt 0 ] || return 0
  while read -r path line; do
    skip=false
    for sig in $line; do
      name=${sig%%:*}
      for key in "${upstream_keys[@]}"; do [ "$name" != "$key" ] || skip=true; done
    done
    if [ "$skip" = true ]; then num_upstream=$((num_upstream + 1)); else kept+=("$path"); fi
  done < <(nix "${nix_flags[@]}" path-info --sigs "${closure[@]}" | sed 's/^\(\S*\)\s*\S*\s*/\1 /')
  [ "${#kept[@]}" -gt 0 ] || return 0
  local hashes missing
  hashes=$(printf '%s\n' "${kept[@]}" | sed 's|^/nix/store/\([^-]*\)-.*|\1|' | jq -Rsc 'split("\n") | map(select(. != ""))')
  missing=$(api POST _api/v1/get-missing-paths "{\"cache\":\"$cache\",\"store_path_hashes\":$hashes}") || exit 1
  local wanted=0 hash
  declare -A absent=()
  while read -r hash; do absent[$hash]=1; done < <(printf '%s' "$missing" | jq -r '.missing_paths[]')
  for path in "${kept[@]}"; do
    hash=${path#/nix/store/}
    if [ -n "${absent[${hash%%-*}]:-}" ]; then
      printf '%s\n' "$path"
      wanted=$((wanted + 1))
    fi
  done
  num_cached=$((${#kept[@]} - wanted))
}

# --- one upload (client/src/push.rs@085e4c5d:465-582 upload_path): logged only once it finished (563-569
# "✅ path (info)", 574-577 "❌ path: error"); attic's info is a speed or "deduplicated" (544-561), this
# stand-in prints elapsed seconds ------------------------------------------------------------------------
upload() { # path
  local path=$1 started=$EPOCHREALTIME error
  case $fault in
  upload-delay:*) sleep "${fault#upload-delay:}" ;;
  upload-hang) sleep infinity ;;
  esac
  if [ -n "$signing_key_file" ]; then
    # recursively: nix copy also uploads the references the target lacks (the real server signs each)
    nix "${nix_flags[@]}" store sign --recursive --key-file "$signing_key_file" "$path" 2>/dev/null
  fi
  if error=$(nix "${nix_flags[@]}" copy --to "${endpoint%/}/$cache" --option netrc-file "$netrc_file" \
    --option download-attempts 1 "$path" 2>&1); then
    printf '✅ %s (%s s)\n' "$path" "$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $started}")" >&2
    return 0
  fi
  error=$(printf '%s\n' "$error" | grep -m 1 -i error | cut -c 1-200)
  printf '❌ %s: %s\n' "$path" "${error:-upload failed}" >&2
  [ -z "${upload_errors:-}" ] || printf '%s\n' "${error:-upload failed}" >>"$upload_errors"
  return 1
}

# --- commands ------------------------------------------------------------------------------------------

# client/src/command/login.rs@d6c4d883:8-23 Login: NAME ENDPOINT [TOKEN] [--set-default], positional only (no
# env fallback; a later main, 05c39b63, adds `env = "ATTIC_LOGIN_TOKEN"`); 25-55 run: overwrite or add the server
# (token only if given), default if --set-default or the only server. d6c4d883 predates the token-file change
# (its line 45 stores `sub.token`, an Option<String>, as ServerConfig.token; config.rs@07147da7:56 has
# Option<ServerTokenConfig>), so it is older than the config.rs read; a post-change login.rs was not read. The config is written back with mode 0600 (config.rs:114-138). This stand-in keeps one
# server per file (the template logs into one).
cmd_login() {
  local name="" url="" given="" set_default=false arg
  for arg in "$@"; do
    case $arg in
    --set-default) set_default=true ;;
    *) if [ -z "$name" ]; then name=$arg; elif [ -z "$url" ]; then url=$arg; else given=$arg; fi ;;
    esac
  done
  { [ -n "$name" ] && [ -n "$url" ]; } || die "the following required arguments were not provided: <NAME> <ENDPOINT>"
  mkdir -p "$(dirname "$config_file")"
  local old_token="" verb=Configuring
  if [ -f "$config_file" ] && grep -q "^\[servers\.$name\]\$" "$config_file"; then
    verb=Overwriting old_token=$(toml_value "servers\\.$name" token)
  fi
  [ -n "$given" ] || given=$old_token
  (
    umask 077
    {
      [ "$set_default" = false ] || printf 'default-server = "%s"\n\n' "$name"
      printf '[servers.%s]\nendpoint = "%s"\n' "$name" "$url"
      [ -z "$given" ] || printf 'token = "%s"\n' "$given"
    } >"$config_file"
  )
  printf '✍️ %s server "%s"\n' "$verb" "$name" >&2
}

# client/src/command/push.rs@014fb92a:60-111 PushContext::push_static (called from 137-191 run, after
# get_cache_config at 151-152, which this stand-in skips for "Nothing specified"): the plan (76-79), then
# "All done" or "Pushing N paths" (81-101), then every upload (103-108); any failed upload makes it fail.
cmd_push() {
  [ "$#" -ge 1 ] || die "the following required arguments were not provided: <CACHE>"
  resolve_cache "$1"
  shift
  if [ "$#" -eq 0 ]; then
    printf '🤷 Nothing specified.\n' >&2
    return 0
  fi
  open_session
  get_cache_config
  local missing=() listing
  listing=$(mktemp)
  plan "$@" >"$listing"
  mapfile -t missing <"$listing"
  rm -f "$listing"
  if [ "${#missing[@]}" -eq 0 ]; then
    if [ "$num_all" -eq 0 ]; then printf '🤷 Nothing selected.\n' >&2; else
      printf '✅ All done! (%s already cached, %s in upstream)\n' "$num_cached" "$num_upstream" >&2
    fi
    return 0
  fi
  printf '⚙️ Pushing %s paths to "%s" on "%s" (%s already cached, %s in upstream)...\n' \
    "${#missing[@]}" "$cache" "$server" "$num_cached" "$num_upstream" >&2
  local failed=0 path running=0
  upload_errors=$(mktemp)
  for path in "${missing[@]}"; do # push.rs@085e4c5d:135-165 Pusher::new; -j default 5, command/push.rs:41-43
    upload "$path" &
    running=$((running + 1))
    if [ "$running" -ge 5 ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
  done
  while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
  done
  if [ "$failed" -ne 0 ]; then # command/push.rs:107-108 push_static: one failed upload's error, the first in
    # the results HashMap's order (push.rs:175-188 wait); this stand-in takes the first to fail in time
    local first
    first=$(head -n 1 "$upload_errors")
    rm -f "$upload_errors"
    die "$first"
  fi
  rm -f "$upload_errors"
}

# client/src/command/watch_store.rs@08360fcb:43-125 run: cache config (57-58), then watch /nix/store
# non-recursively (92) for removed `<path>.lock` files, i.e. paths becoming valid (103-116), skipping `.drv` and
# `-source` (127-132 strip_lock_file). Polling for new valid entries stands in for inotify (the extra `.chroot`
# and `.check` skips below are the stand-in's). The paths go to a PushSession (client/src/push.rs@085e4c5d:
# 284-359 PushSession::worker): a batch is planned 2 s after the last queued path (303) or 10 s after the
# collection round began (321; the stand-in counts from the batch's first path), roots and plan paths already
# known to the session are dropped (327-333, 343-351), and the plan's uploads go to 5 workers (135-165
# Pusher::new; -j default 5, watch_store.rs:34-36).
# No signal handler anywhere (main.rs@45d904ed:29-33, watch_store.rs:100-122): SIGTERM ends the process with
# every queued and in-flight upload.
cmd_watch_store() {
  [ "$#" -eq 1 ] || die "the following required arguments were not provided: <CACHE>"
  resolve_cache "$1"
  open_session
  get_cache_config
  # Not a handler of the real client's: it makes the uploads (threads of the real process) end with it.
  trap 'kill -KILL $(jobs -p) 2>/dev/null; exit 143' TERM
  trap 'kill -KILL $(jobs -p) 2>/dev/null; exit 130' INT
  printf '👀 Pushing new store paths to "%s" on "%s"\n' "$cache" "$server" >&2
  declare -A seen=() known=()
  local entry
  shopt -s nullglob
  for entry in /nix/store/*; do seen[$entry]=1; done
  local batch=() pending=() batch_started="" last_queued="" now running=0
  while :; do
    for entry in /nix/store/*; do
      [ -z "${seen[$entry]:-}" ] || continue
      case $entry in
      *.lock | *.drv | *-source | *.chroot | *.check) seen[$entry]=1 ;;
      *) pending+=("$entry") && seen[$entry]=1 ;;
      esac
    done
    local still=()
    for entry in "${pending[@]}"; do
      if [ -e "$entry.lock" ] || ! nix-store --check-validity "$entry" 2>/dev/null; then
        [ ! -e "$entry" ] || still+=("$entry") # its lock is still held: not valid yet
      else
        batch+=("$entry")
        last_queued=$EPOCHREALTIME
        batch_started=${batch_started:-$EPOCHREALTIME}
      fi
    done
    pending=("${still[@]}")
    now=$EPOCHREALTIME
    if [ "${#batch[@]}" -gt 0 ] && { awk "BEGIN{exit !($now - $last_queued >= 2)}" ||
      awk "BEGIN{exit !($now - $batch_started >= 10)}"; }; then
      local path listing
      listing=$(mktemp)
      # push.rs@085e4c5d:257-282 PushSession::with_pusher: a failed plan (worker 335-341, `?`) ends the worker
      # ("Worker exited", 274), which restarts with an empty batch (290; roots drained at 329-330): not retried.
      (plan "${batch[@]}") >"$listing" || printf 'Worker exited: the push plan failed\n' >&2
      while read -r path; do
        if [ -z "$path" ] || [ -n "${known[$path]:-}" ]; then continue; fi
        known[$path]=1
        while [ "$running" -ge 5 ]; do
          wait -n
          running=$((running - 1))
        done
        { upload "$path" && case $fault in crash-after-push:?*)
          [[ $path != *"${fault#crash-after-push:}"* ]] || kill -KILL $$ ;;
        esac; } &
        running=$((running + 1))
      done <"$listing"
      rm -f "$listing"
      batch=() batch_started=""
    fi
    # Reap finished uploads without blocking.
    while [ "$running" -gt 0 ] && [ "$(jobs -pr | wc -l)" -lt "$running" ]; do
      wait -n
      running=$((running - 1))
    done
    sleep 0.25 &
    wait $! # interruptible, so SIGTERM ends the process at once, as it ends the real one
  done
}

command=${1:-}
[ "$#" -eq 0 ] || shift
case $command in
login) cmd_login "$@" ;;
push) cmd_push "$@" ;;
watch-store) cmd_watch_store "$@" ;;
*) die "the stand-in implements login, push and watch-store (got '${command}')" ;;
esac
