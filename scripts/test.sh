#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# DuckDB reads braid's segments in tests/duckdb.rs (proof they are plain Parquet);
# moto_server is the local S3 that tests/s3.rs runs the binary against; pydruid and SQLAlchemy
# are the Druid clients tests/query.rs runs unmodified against `braid serve`.
python3 -m pip install --quiet --disable-pip-version-check duckdb "moto[server]" \
  pydruid==0.6.9 sqlalchemy==2.1.9

# librdkafka (built from source by rdkafka-sys) links the system OpenSSL for SASL_SSL/TLS
# consumerProperties; its headers come from Debian's libssl-dev.
if ! pkg-config --exists openssl 2>/dev/null; then
  sudo_if_needed=""
  [ "$(id -u)" -ne 0 ] && sudo_if_needed="sudo"
  $sudo_if_needed apt-get update -qq && $sudo_if_needed apt-get install -y -qq libssl-dev pkg-config
fi

cargo test --workspace
