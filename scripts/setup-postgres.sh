#!/usr/bin/env bash
# Installs Debian's PostgreSQL 15 and starts its default cluster, with a superuser role for the
# calling user over the local socket (peer authentication), for the tests' databases. Prints the
# admin URL the tests take as CONTROLD_TEST_DATABASE_URL. Idempotent.
set -euo pipefail

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q "install ok installed"; then
  echo "setup-postgres: installing postgresql-15" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends postgresql-15 >&2
fi

if ! pg_lsclusters -h 15 main 2>/dev/null | grep -q online; then
  "${sudo_cmd[@]}" pg_ctlcluster 15 main start >&2
fi

user=$(id -un)
socket=/var/run/postgresql
# The tests make and drop a database each: a superuser role keeps that one statement.
"${sudo_cmd[@]}" runuser -u postgres -- psql -h "$socket" -qtAc \
  "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
     CREATE ROLE \"$user\" LOGIN SUPERUSER; END IF; END \$\$;" >&2
# Databases earlier test runs left (a restarted controld keeps its state, so tests leave them).
for db in $(psql -h "$socket" -d postgres -qtAc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'controld_test_%'"); do
  psql -h "$socket" -d postgres -qc "DROP DATABASE \"$db\" WITH (FORCE)" >&2
done
echo "postgresql://$user@%2Fvar%2Frun%2Fpostgresql/postgres"
