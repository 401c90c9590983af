#!/usr/bin/env bash
# The README walkthrough: the Druid tutorial's five wikipedia events through the raw archive,
# a batch reindex, the segment timeline and a Druid SQL query, in ./var/deep.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin braid
braid() { target/release/braid "$@"; }
DEEP=${DEEP:-./var/deep}

braid raw put --spec examples/wikipedia.json --deep-storage "$DEEP" examples/wikipedia-events.json
echo
braid batch reindex --spec examples/wikipedia.json --deep-storage "$DEEP" --interval 2013-08-31/2013-09-01
echo
braid segments --deep-storage "$DEEP"
echo
braid query --deep-storage "$DEEP" --sql 'SELECT page, SUM("count") AS edits, SUM(added) AS added FROM wikipedia GROUP BY page ORDER BY added DESC'
