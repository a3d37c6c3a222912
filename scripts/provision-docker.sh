#!/usr/bin/env bash
# Provisions a Docker engine for the runtime and end-to-end tests on a fresh Debian machine (root).
#   - reuses an engine that already answers `docker info`;
#   - otherwise installs what is missing (docker.io, docker-compose, busybox-static) with one
#     `apt-get update`, starts `dockerd --iptables=false --bridge=none` in the background (services
#     use host networking, so no bridge or iptables is needed) and waits for it, 60 s at most.
# Idempotent, and it never hangs CI: every command that talks to a daemon or the network is bounded.
# Exit 0 when Docker, compose and a static /bin/busybox are ready; non-zero with the reason otherwise.
set -euo pipefail

LOG_FILE="${NUWAX_DOCKERD_LOG:-/tmp/nuwax-dockerd.log}"
WAIT_SECONDS="${NUWAX_DOCKERD_WAIT:-60}"

log() { printf 'provision-docker: %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

# `docker info` can block on a socket whose daemon is stuck: bound it.
engine_answers() { command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1; }
compose_present() {
  command -v docker-compose >/dev/null 2>&1 ||
    { command -v docker >/dev/null 2>&1 && timeout 15 docker compose version >/dev/null 2>&1; }
}
# The test images are a rootfs holding /bin/busybox alone: it must be the static build.
busybox_static() { [ -x /bin/busybox ] && ! LC_ALL=C ldd /bin/busybox >/dev/null 2>&1; }

updated=0
apt_install() {
  [ "$(id -u)" -eq 0 ] || fail "need root to install: $* (run this script with sudo)"
  command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: install $* by hand"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$updated" -eq 0 ]; then
    log "apt-get update"
    timeout 600 apt-get update -qq || fail "apt-get update failed or took over 10 min"
    updated=1
  fi
  log "apt-get install $*"
  timeout 900 apt-get install -y -qq --no-install-recommends "$@" >/dev/null || fail "apt-get install $* failed"
}

dockerd_running() {
  [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null
}

start_dockerd() {
  log "starting dockerd --iptables=false --bridge=none (log: $LOG_FILE)"
  # setsid + nohup: the engine outlives this script and the CI step's shell.
  setsid nohup dockerd --iptables=false --bridge=none >"$LOG_FILE" 2>&1 </dev/null &
  local pid=$! deadline=$((SECONDS + WAIT_SECONDS))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -S /var/run/docker.sock ] && engine_answers; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null && ! dockerd_running; then
      log "dockerd exited at start; the end of its log:"
      tail -n 30 "$LOG_FILE" >&2 || true
      fail "dockerd could not start"
    fi
    sleep 1
  done
  log "the end of the dockerd log:"
  tail -n 30 "$LOG_FILE" >&2 || true
  fail "dockerd did not answer within ${WAIT_SECONDS} s"
}

missing=()
if engine_answers; then
  version=$(timeout 15 docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
  log "reusing the running Docker engine ($version)"
else
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
fi
compose_present || missing+=(docker-compose)
busybox_static || missing+=(busybox-static)
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

if ! engine_answers; then
  if dockerd_running; then
    log "dockerd is running but does not answer yet; waiting up to ${WAIT_SECONDS} s"
    deadline=$((SECONDS + WAIT_SECONDS))
    until engine_answers; do
      [ "$SECONDS" -lt "$deadline" ] ||
        fail "the running dockerd (pid $(cat /var/run/docker.pid)) does not answer docker info"
      sleep 1
    done
  else
    start_dockerd
  fi
fi

busybox_static || fail "/bin/busybox is missing or not static (apt-get install busybox-static)"
if timeout 15 docker compose version >/dev/null 2>&1; then
  log "compose: $(timeout 15 docker compose version --short 2>/dev/null) (v2)"
elif command -v docker-compose >/dev/null 2>&1; then
  log "compose: $(timeout 30 docker-compose version --short 2>/dev/null) (v1)"
else
  fail "neither docker compose (v2) nor docker-compose (v1) is installed"
fi
log "ready: Docker $(timeout 15 docker version --format '{{.Server.Version}}' 2>/dev/null)"
