#!/usr/bin/env bash
# Install (when missing) and start a local PostgreSQL server with a `lab` user and a test db.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
  pg_createcluster "$ver" main >/dev/null
fi
pg_ctlcluster "$ver" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -h 127.0.0.1" && break
  sleep 1
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='lab'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE USER lab PASSWORD 'lab' SUPERUSER\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='lab_test'\"" | grep -q 1 ||
  su postgres -c "createdb -O lab lab_test"
echo "PostgreSQL $ver running on 127.0.0.1:5432 (database lab_test)"
