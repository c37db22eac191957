"""Traffic simulator: a deterministic fake classifier writing prediction documents and their reviews.

`python -m simulator` writes live traffic at a chosen rate; `python -m simulator history` writes days of
history in bulk. The document generator (`generator.py`) is pure; MongoDB I/O lives in `traffic.py`,
`history.py` and `connection.py`.
"""
