#!/usr/bin/env bash
# The README walkthrough: the Druid tutorial's five wikipedia events through the raw archive,
# a batch reindex and the segment timeline, in ./var/deep.
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
