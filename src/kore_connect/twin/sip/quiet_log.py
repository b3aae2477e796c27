"""A log that a peer cannot flood: a few lines a second per source, and a count of the rest.

Every refused or dropped message is worth one line, but a peer sending thousands of bad messages
must not fill the disk or bury everything else. Each source has a bucket of `burst` lines that
refills at `per_second`; a line with no room is counted, and the next line that is written says
how many were left out since.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_SOURCES = 1024  # the sources remembered; the least recent are forgotten (and start afresh)


@dataclass
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0


class QuietLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        per_second: float = 2.0,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._rate = per_second
        self._burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def warning(self, source: str, message: str, *args: object) -> bool:
        """Log `message % args` for `source`, unless its bucket is empty. Returns whether it did."""
        now = self._clock()
        bucket = self._buckets.pop(source, None) or _Bucket(float(self._burst), now)
        self._buckets[source] = bucket
        while len(self._buckets) > MAX_SOURCES:
            self._buckets.popitem(last=False)
        bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            return False
        bucket.tokens -= 1.0
        if bucket.suppressed:
            message += " (and %d more from %s left out of the log)"
            args = (*args, bucket.suppressed, source)
            bucket.suppressed = 0
        self._logger.warning(message, *args)
        return True
