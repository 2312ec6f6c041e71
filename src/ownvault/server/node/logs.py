"""Throttled logging for the node: one line per kind of message per interval, counts kept.

A flood of bad requests (or of failed ``accept`` calls when the process runs out of file
descriptors) once made a node write ~490 MB of tracebacks in 70 s. :class:`LogThrottle`
is a :class:`logging.Filter` on the handlers of the node's process (root and uvicorn's):
the first record of a kind (logger, level, message template, exception type) in each
interval passes, the rest are counted and dropped; the next record of that kind to pass
says how many were dropped. Tracebacks are printed only for the first of a kind per
interval too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["LogThrottle", "install_log_throttle"]

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
MAX_KINDS = 1000


class LogThrottle(logging.Filter):
    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._window: dict[tuple[object, ...], tuple[float, int]] = {}
        self.suppressed = 0
        """Records dropped since the node started (all kinds)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc_type = record.exc_info[0] if record.exc_info else None
        key = (record.name, record.levelno, str(record.msg), exc_type)
        now = self._clock()
        started, dropped = self._window.get(key, (-float("inf"), 0))
        if now - started < self.interval:
            self._window[key] = (started, dropped + 1)
            self.suppressed += 1
            return False
        if len(self._window) >= MAX_KINDS:
            self._window = {k: v for k, v in self._window.items() if now - v[0] < self.interval}
            if len(self._window) >= MAX_KINDS:
                self.suppressed += 1
                return False
        self._window[key] = (now, 0)
        if dropped:
            record.msg = f"{record.msg} [{dropped} more like this in the last {self.interval:g} s]"
        return True


def install_log_throttle(interval: float = 60.0) -> LogThrottle:
    """Put one :class:`LogThrottle` on every handler the node's records reach.

    Call after uvicorn configured logging. Handler filters (not logger filters) see the
    records of child loggers too; the root logger gets a stderr handler if it has none
    (asyncio's records would otherwise go to ``logging.lastResort``, unfiltered).
    """
    throttle = LogThrottle(interval)
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler()
        stderr.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
        root.addHandler(stderr)
    handlers: set[logging.Handler] = {*root.handlers}
    for name in UVICORN_LOGGERS:
        handlers.update(logging.getLogger(name).handlers)
    for handler in handlers:
        handler.addFilter(throttle)
    return throttle
