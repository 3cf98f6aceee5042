"""Mixin for message blocks that must wait for the in-band end-of-stream mark."""
import threading

import pmt


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
