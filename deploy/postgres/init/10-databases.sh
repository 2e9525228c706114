#!/bin/sh
# One PostgreSQL for the stack: a database and a login role each for HAPI FHIR, the facade
# (named state, order outbox, job queue, CDS feedback), the clinical data warehouse and
# Orthanc's index. Runs once, on the first start of an empty data volume (the postgres image
# runs /docker-entrypoint-initdb.d/*.sh as the superuser). Passwords come from the environment
# (deploy/stack.env), never from this file; psql quotes them (:'var'), so any character is safe.
set -eu

create() {  # create <role and database name> <password>
  if [ -z "$2" ]; then
    echo "10-databases.sh: no password given for $1 (see deploy/stack.env.example)" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="$1" -v pw="$2" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8''', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
}

create hapi "${HAPI_DB_PASSWORD:-}"
create facade "${FACADE_DB_PASSWORD:-}"
create cdw "${CDW_DB_PASSWORD:-}"
create orthanc "${ORTHANC_DB_PASSWORD:-}"
