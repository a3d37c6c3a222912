#!/usr/bin/env bash
# Provisions a Docker engine for the end-to-end tests on a fresh Debian machine (run as root).
# Idempotent: reuses a dockerd that already answers. Never hangs: every wait is bounded.
set -euo pipefail

log() { printf 'provision-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  log "reusing the running Docker engine ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
else
  missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then log "need root to install: ${missing[*]}"; exit 1; fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    timeout 900 apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (no iptables, no bridge: services use host networking)"
    nohup dockerd --iptables=false --bridge=none >/tmp/nuwax-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    if [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1; then break; fi
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not come up within 60 s; its log:"
    tail -n 30 /tmp/nuwax-dockerd.log >&2 || true
    exit 1
  fi
  log "Docker engine up"
fi

[ -x /bin/busybox ] || { log "/bin/busybox missing (apt-get install busybox-static)"; exit 1; }
if docker compose version >/dev/null 2>&1; then
  log "compose: $(docker compose version --short 2>/dev/null) (v2)"
elif command -v docker-compose >/dev/null 2>&1; then
  log "compose: $(docker-compose version --short 2>/dev/null) (v1)"
else
  log "no docker compose (v2) nor docker-compose (v1)"; exit 1
fi
