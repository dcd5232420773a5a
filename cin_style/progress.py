"""A small progress bar for long loops: redraws one line on a terminal,
prints a line every ~10% otherwise (so logs stay readable)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str = "", enabled: bool = True, stream=None,
                 start: int = 0):
        self.total = max(1, total)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = start
        self.started = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_pct_line = -1
        self.info = ""

    def update(self, n: int = 1, info: str = "") -> None:
        self.done += n
        if info:
            self.info = info
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._last_draw = now
                self.stream.write("\r\033[K" + self._line())
                self.stream.flush()
        else:
            decile = int(10 * self.done / self.total)
            if decile != self._last_pct_line or self.done >= self.total:
                self._last_pct_line = decile
                self.stream.write(self._line() + "\n")
                self.stream.flush()

    def _line(self) -> str:
        frac = min(1.0, self.done / self.total)
        elapsed = time.perf_counter() - self.started
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        return (f"{self.label} [{bar}] {self.done}/{self.total} "
                f"{elapsed:6.1f}s {self.info}").rstrip()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
