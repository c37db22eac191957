"""CLARA Monitor's shared domain: configuration, the record contract, rollups, metric maths, MongoDB access."""

import os

# whylogs reads this once, when first imported: without it, logging a profile tries to send usage
# telemetry over the network. Every entry point imports clara first.
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
