#!/bin/sh
# The first start of the compose database: the owner and runtime roles of
# docs/OPERATIONS.md ("Database roles"); `python -m clawdbot.serve release` (migrate, as the
# owner) then applies the runtime role's grants.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$CLAWDBOT_OWNER_PASSWORD" -v app_password="$CLAWDBOT_APP_PASSWORD" <<'SQL'
CREATE ROLE clawdbot_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE clawdbot_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE clawdbot OWNER clawdbot_owner;
SQL
