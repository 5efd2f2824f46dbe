#!/bin/sh
# Runs once, when the compose postgres volume is empty (/docker-entrypoint-initdb.d).
# Creates the application role and database. Temporal uses the superuser and creates its own
# databases (temporal, temporal_visibility) through temporalio/auto-setup.
# The entrypoint may source this file instead of executing it, so do not `set -u` here.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v app_password="${CAMLIGHTS_DB_PASSWORD:-camlights}" <<'EOSQL'
CREATE ROLE camlights LOGIN PASSWORD :'app_password';
CREATE DATABASE camlights OWNER camlights;
EOSQL
