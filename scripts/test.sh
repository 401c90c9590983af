#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# DuckDB reads braid's segments in tests/duckdb.rs (proof they are plain Parquet);
# moto_server is the local S3 that tests/s3.rs runs the binary against; pydruid and SQLAlchemy
# are the Druid clients tests/query.rs runs unmodified against `braid serve`.
python3 -m pip install --quiet --disable-pip-version-check duckdb "moto[server]" \
  pydruid==0.6.9 sqlalchemy==2.1.9

source scripts/system-deps.sh

cargo test --workspace
