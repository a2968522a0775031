#!/bin/sh
# Create the Attic bucket on the in-cluster SeaweedFS S3 gateway, then write SeaweedFS's filer.conf (the TTL
# on bazel-remote's prefix, or no path rule). Safe to run again: an existing bucket owned by these credentials
# counts as success, and filer.conf is written whole. Runs in curlimages/curl (busybox sh).
#
# Env: S3_ENDPOINT (http://host:port), BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#      FILER_URL (http://host:port of the filer), FILER_CONF (the filer.conf document),
#      REGION (default us-east-1), ATTEMPTS (default 60), RETRY_SECONDS (default 5).
# Exit: 0 bucket exists and filer.conf written, 1 refused (credentials, name, owned by someone else, filer.conf),
#       2 store or filer unreachable.
set -eu

: "${S3_ENDPOINT:?S3_ENDPOINT is required}"
: "${BUCKET:?BUCKET is required}"
: "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is required}"
: "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is required}"
: "${FILER_URL:?FILER_URL is required}"
: "${FILER_CONF:?FILER_CONF is required}"
REGION="${REGION:-us-east-1}"
ATTEMPTS="${ATTEMPTS:-60}"
RETRY_SECONDS="${RETRY_SECONDS:-5}"
url="${S3_ENDPOINT%/}/${BUCKET}"

# s3 CURL-ARGS... : print the HTTP status of one signed request (000 when the store is unreachable).
# The credentials reach curl on stdin (--config -), never on its command line.
s3() {
  printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
    curl --silent --config - --aws-sigv4 "aws:amz:${REGION}:s3" \
      --connect-timeout 5 --max-time 20 --output /dev/null --write-out '%{http_code}' "$@" "$url" ||
    true
}

# next_attempt N GAVE-UP WAITING-FOR: after ATTEMPTS tries exit 2 saying GAVE-UP, else wait before try N+1.
next_attempt() {
  if [ "$1" -ge "$ATTEMPTS" ]; then
    echo "$2 after ${ATTEMPTS} attempts" >&2
    exit 2
  fi
  echo "waiting for $3, attempt $1/${ATTEMPTS}"
  sleep "$RETRY_SECONDS"
}

# write_filer_conf: upload FILER_CONF as /etc/seaweedfs/filer.conf (the filer reloads it when it changes),
# retrying while the filer does not answer.
write_filer_conf() {
  tries=1
  while :; do
    written="$(printf '%s' "$FILER_CONF" |
      curl --silent --connect-timeout 5 --max-time 20 --output /dev/null --write-out '%{http_code}' \
        --form 'file=@-;filename=filer.conf' "${FILER_URL%/}/etc/seaweedfs/" || true)"
    case "$written" in
      200 | 201)
        echo "filer.conf written on ${FILER_URL}: ${FILER_CONF}"
        exit 0
        ;;
      000) ;;
      *)
        echo "${FILER_URL} refused filer.conf (HTTP ${written})" >&2
        exit 1
        ;;
    esac
    next_attempt "$tries" "${FILER_URL} did not answer writing filer.conf" "the filer at ${FILER_URL}"
    tries=$((tries + 1))
  done
}

attempt=1
while :; do
  status="$(s3 --head)"
  case "$status" in
    200)
      echo "bucket '${BUCKET}' exists on ${S3_ENDPOINT}"
      write_filer_conf
      ;;
    404)
      created="$(s3 --request PUT)"
      case "$created" in
        200 | 409)
          # 409 is BucketAlreadyOwnedByYou (a concurrent run) or a bucket someone else owns: check which.
          if [ "$(s3 --head)" = 200 ]; then
            echo "bucket '${BUCKET}' created on ${S3_ENDPOINT}"
            write_filer_conf
          fi
          echo "bucket '${BUCKET}' on ${S3_ENDPOINT} belongs to another identity (HTTP ${created})" >&2
          exit 1
          ;;
        400)
          echo "${S3_ENDPOINT} refused the bucket name '${BUCKET}' (HTTP 400)" >&2
          exit 1
          ;;
        403)
          echo "${S3_ENDPOINT} refused the credentials creating bucket '${BUCKET}' (HTTP 403)" >&2
          exit 1
          ;;
      esac
      status="$created"
      ;;
    403)
      echo "${S3_ENDPOINT} refused the credentials for bucket '${BUCKET}' (HTTP 403)" >&2
      exit 1
      ;;
  esac
  next_attempt "$attempt" "${S3_ENDPOINT} did not answer for bucket '${BUCKET}'" "${S3_ENDPOINT} (HTTP ${status})"
  attempt=$((attempt + 1))
done
