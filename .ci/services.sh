#!/usr/bin/env bash
# Start Redis and PostgreSQL for the test suite when they are not already answering;
# install them from Debian's packages when they are missing.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! (command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1); then
  if ! command -v redis-server >/dev/null; then
    as_root apt-get update -qq && as_root apt-get install -y -qq redis-server
  fi
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "redis: $(redis-cli -h 127.0.0.1 ping)"

if ! (command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q); then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    as_root apt-get update -qq && as_root apt-get install -y -qq postgresql
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi
pg_isready -h 127.0.0.1 -p 5432

# Browser tests drive Debian's Chromium (no browser download works offline).
if ! command -v chromium >/dev/null; then
  as_root apt-get update -qq && as_root apt-get install -y -qq chromium chromium-driver || echo "chromium unavailable: browser tests will be skipped"
fi

# The simulator reads GPG keys with gpg, as Argo CD does; tests make keys with gpg and ssh-keygen.
if ! command -v gpg >/dev/null || ! command -v ssh-keygen >/dev/null; then
  as_root apt-get update -qq && as_root apt-get install -y -qq gnupg openssh-client
fi
