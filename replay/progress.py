"""Progress: a one-line bar (done/total, rate, ETA) on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("replay")
BAR_WIDTH = 28
REDRAW_SECONDS = 0.1


def clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts documents done against a total known up front (it may be passed: reviews keep coming)."""

    def __init__(self, total: int, *, stream: TextIO | None = None, log_interval: float = 10.0,
                 now=time.monotonic):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_interval, self.now = log_interval, now
        self.started = self.last_shown = now()

    def advance(self, documents: int) -> None:
        self.done += documents
        moment = self.now()
        if moment - self.last_shown >= (REDRAW_SECONDS if self.tty else self.log_interval):
            self.last_shown = moment
            self.show()

    def rate(self) -> float:
        elapsed = self.now() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> tuple[str, float]:
        total = max(self.total, self.done)
        fraction = self.done / total if total else 1.0
        rate = self.rate()
        eta = clock((total - self.done) / rate) if rate > 0 else "?"
        return f"{self.done:,}/{total:,} ({fraction:.1%}), {rate:,.0f} docs/s, ETA {eta}", fraction

    def show(self) -> None:
        text, fraction = self.line()
        if self.tty:
            filled = round(fraction * BAR_WIDTH)
            self.stream.write(f"\rreplay [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}\033[K")
            self.stream.flush()
        else:
            log.info("progress: %s", text)

    def close(self) -> None:
        """Draw the final state; on a terminal, end the bar's line."""
        if self.tty:
            self.show()
            self.stream.write("\n")
            self.stream.flush()
