"""Receiver loss-rate estimate, the payload of the `feedback` message (key `loss_rate`).

:class:`LossEstimator` sees, per emitted frame index, whether the frame's own packet arrived
(sequence numbers make every loss visible, even a burst). It reports the loss fraction over
the last `window` frame indices, smoothed by an EWMA across reports (`alpha` = weight of the
newest report; 1 = no smoothing). `due()` says when `interval` frames passed since the last
report, so reports are clocked by frames (deterministic in simulation; 12 frames ~ 1 s).
"""
from collections import deque


class LossEstimator:
    def __init__(self, window: int = 50, interval: int = 12, alpha: float = 0.5):
        if window < 1 or interval < 1 or not 0.0 < alpha <= 1.0:
            raise ValueError("need window >= 1, interval >= 1, 0 < alpha <= 1")
        self.window, self.interval, self.alpha = int(window), int(interval), float(alpha)
        self._seen = deque(maxlen=self.window)
        self._lost = 0
        self._since = 0
        self.estimate = None            # EWMA of reports; None before the first one
        self.frames = 0

    def update(self, received: bool) -> None:
        """Account one frame index: `received` is True when its own packet arrived."""
        lost = 0 if received else 1
        if len(self._seen) == self.window:
            self._lost -= self._seen[0]
        self._seen.append(lost)
        self._lost += lost
        self._since += 1
        self.frames += 1

    def window_rate(self) -> float:
        return self._lost / len(self._seen) if self._seen else 0.0

    def due(self) -> bool:
        return self._since >= self.interval and bool(self._seen)

    def report(self) -> dict:
        """Make a report now (and restart the interval): {'loss_rate', 'window_loss', 'frames'}."""
        w = self.window_rate()
        self.estimate = w if self.estimate is None else \
            self.alpha * w + (1.0 - self.alpha) * self.estimate
        self._since = 0
        return {"loss_rate": float(self.estimate), "window_loss": float(w),
                "frames": int(self.frames)}
