"""A progress bar on stderr, with no dependency: one redrawn line on a terminal, one line per
finished item otherwise (logs, CI)."""
from __future__ import annotations

import sys
import time
from collections import Counter


class Progress:
    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream if stream is not None else sys.stderr
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self) -> str:
        filled = int(self.width * self.done / self.total) if self.total else self.width
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed * 60
        left = (self.total - self.done) / (self.done / elapsed) if self.done else 0.0
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items()))
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
                + (f"  {counts}" if counts else "") + f"  {rate:.1f}/min  eta {left:.0f} s")

    def advance(self, status: str, label: str = "") -> None:
        self.done += 1
        self.counts[status] += 1
        if self.tty:
            self.stream.write("\r" + self.line())
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"{self.line()}  {label}: {status}\n")
        self.stream.flush()
