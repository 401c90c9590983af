#!/usr/bin/env bash
# The run command: builds braid (release) and starts `braid quickstart`: an embedded Kafka broker,
# a producer of wikipedia-like events, the stream, the batch scheduler and the query API on
# 127.0.0.1:8082, with deep storage in ./braid-data. Ctrl-C stops it. Flags are passed on, e.g.
#   scripts/quickstart.sh --rate 1000 --listen 127.0.0.1:9000
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-deps.sh
cargo build --release --quiet --bin braid
exec target/release/braid quickstart "$@"
