"""Small helpers shared by the GNU Radio blocks: counters, the `stats` port, rate-limited logs."""
import threading
import time

import pmt


class RateLimitedLog:
    """Log a message at most once per `interval_s` per key; counts what it suppressed."""

    def __init__(self, logger, interval_s: float = 5.0):
        self.logger, self.interval_s = logger, interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, key: str, msg: str) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self.interval_s:
            extra = self._suppressed.pop(key, 0)
            self.logger.warn(msg + (f" ({extra} similar messages suppressed)" if extra else ""))
            self._last[key] = now
        else:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1


def stats_to_pmt(stats: dict):
    """Flat dict of numbers/strings -> PMT dict (for the `stats` message port)."""
    return pmt.to_pmt({str(k): v for k, v in stats.items()})


class DoneGrace:
    """Mixin for message blocks that see GNU Radio's `done` on the `system` port before the
    in-band end-of-stream PDU (docs/architecture.md): hold `done` for `eos_grace_s`, then finish.

    The block sets `self.eos_grace_s`, `self.counters` and `self._log`, and routes `done` to
    `_start_grace(msg)` (first time) or `_finish()` (eos seen, or the grace timer fired: the
    timer re-posts `done` with value -1).
    """

    _timer = None
    _done_msg = None

    def _start_grace(self, msg) -> None:
        self._done_msg = msg
        self._timer = threading.Timer(self.eos_grace_s, self._post_timeout)
        self._timer.daemon = True
        self._timer.start()

    def _post_timeout(self) -> None:
        try:
            self._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(-1)))
        except Exception:                                   # noqa: BLE001 - timer thread
            pass

    def _cancel_grace(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _finish(self) -> None:
        self._cancel_grace()
        self.gateway.system_handler(pmt.cons(pmt.intern("done"), pmt.from_long(1)))

    def _bad(self, kind, text=None) -> None:
        self.counters["bad_messages"] += 1
        self._log.warn(kind, f"dropped a message: {text or kind}")
