"""CLARA Monitor's shared domain: configuration, the record contract, rollups, metric maths, MongoDB access."""
