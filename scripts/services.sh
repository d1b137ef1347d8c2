#!/usr/bin/env bash
# Starts PostgreSQL (127.0.0.1:5432, trust auth, database `test`) and Redis (127.0.0.1:6379) when they are
# down, installing Debian's packages first when they are missing, and Python's aiosmtpd (the mail tests'
# SMTP sink) when it cannot be imported. Safe to run repeatedly.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  for _ in $(seq 1 60); do
    port_open "$1" && return 0
    sleep 0.5
  done
  echo "services: nothing listens on 127.0.0.1:$1 after 30 s" >&2
  return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! port_open 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "services: installing PostgreSQL"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    # Local development and CI only: trust connections from this machine.
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
      "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  echo "services: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for_port 5432
fi
if command -v psql >/dev/null 2>&1 &&
  ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test" || true
fi

if ! port_open 6379; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "services: installing Redis"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
  fi
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_for_port 6379
fi
# The SMTP sink the mail tests start (tests/support/smtp_sink.py).
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "services: installing aiosmtpd (SMTP sink for the mail tests)"
  python3 -m pip install --quiet aiosmtpd || pip3 install --quiet aiosmtpd
fi
echo "services: PostgreSQL, Redis and the SMTP sink are available"
