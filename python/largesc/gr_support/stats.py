"""What the blocks share for reporting: the `stats` port payload and rate-limited logs."""
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


def publish_final_stats(block, port) -> None:
    """From a block's stop(): publish get_stats() on `port`; log instead of raising (stop() must not raise)."""
    try:
        block.message_port_pub(port, stats_to_pmt(block.get_stats()))
    except Exception as exc:                                # noqa: BLE001
        block._log.warn("stop", f"stop: {exc}")
