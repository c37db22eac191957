"""What a count leaves in CLARA's collections, as comparable values."""

from __future__ import annotations

from clara.db import Collections
from clara.segments import SEGMENTS_STATE_ID


def stored(cols: Collections) -> dict[str, list]:
    """Every CLARA collection a count fills, as comparable values (write times and batch ids left out)."""
    def clean(doc):
        return {key: value for key, value in doc.items() if key not in ("updated_at", "at", "recount_id")}

    result = {name: sorted((clean(doc) for doc in getattr(cols, name).find()), key=repr)
              for name in ("rollups", "predictions", "segment_rollups", "segment_predictions", "counted")}
    admitted = (cols.state.find_one({"_id": SEGMENTS_STATE_ID}) or {}).get("values", {})
    result["admitted"] = {field: sorted(values) for field, values in admitted.items()}
    return result
