"""One end-of-stream rule for every block that receives messages (docs/architecture.md).

Why `done` is not the end. When an upstream block finishes, GNU Radio (3.10, tpb_thread_body.cc)
posts ``("done" . 1)`` on the `system` port of every block connected to one of its message
outputs, once per connection, and only afterwards calls the upstream block's ``stop()``, which
is where the adaptive controller sends the eos mark and every block publishes its final
`stats`. GNU Radio's own handler ends a block at the first `done`, so a block that keeps it
loses those last messages (and with several upstream connections, everything after the first).

The rule, kept by an `EndOfStream` that the block owns:

- every `done` from upstream is counted (`edges`: the message connections into the block, when
  the block knows them; with fewer it starts waiting at the first);
- once all have come, the block still takes messages until it has been quiet for `grace_s`
  after the last `done` and the last message it was told about (``on_message``), so the
  messages an upstream ``stop()`` posts arrive in time;
- a block that expects the in-band eos mark ends as soon as it has handled it and its upstream
  is done (``on_eos``), without waiting out the grace period;
- GNU Radio serves a block's ports in an arbitrary order, so before it ends a block handles the
  messages still queued (``drain`` for blocks without stream ports; stream blocks check
  ``nmsgs`` in ``work()``).

Two kinds of block use it:

- stream sources (stats_to_stream, the depacketizer): ``system(msg)`` in the `system` handler,
  ``on_message()`` / ``on_eos()`` in the message handlers, and in ``work()`` return -1 once
  ``due()`` and nothing is pending (GNU Radio wakes a waiting source at least every 250 ms);
- message-only blocks (the PHY framer and deframer, the erasure channel): the same, but they
  have no ``work()`` to poll, so they call ``arm(block)``: a timer posts ``("done" . -1)`` to the
  block when the quiet period would be over (``system`` tells it apart from an upstream
  `done`), and ``finish(block)`` ends the block once.

``reset()`` (from the block's ``start()``) forgets a previous run.
"""
from __future__ import annotations

import threading
import time

import pmt

from .ports import DONE, SYSTEM

TIMER = -1                         # the value of the `done` that `arm`'s timer posts


def done_msg(value: int = 1):
    """A `done` message as GNU Radio posts it (value 1), or as the grace timer does (TIMER)."""
    return pmt.cons(DONE, pmt.from_long(int(value)))


def is_done(msg) -> bool:
    return pmt.is_pair(msg) and pmt.is_symbol(pmt.car(msg)) and pmt.eq(pmt.car(msg), DONE)


class EndOfStream:
    """When a block that receives messages may end (see the module docstring).

    grace_s: quiet time after upstream finished (0: end at the last `done`); edges: upstream
    message connections to wait for (1: start waiting at the first `done`).
    """

    def __init__(self, grace_s: float = 1.0, edges: int = 1, clock=time.monotonic):
        self.grace_s = float(grace_s)
        self.edges = max(1, int(edges))
        self._clock = clock
        self._lock = threading.Lock()
        self._timer = None
        self.reset()

    def reset(self) -> None:
        """Forget a previous run (call from the block's start())."""
        self.cancel()
        self.dones = 0                 # upstream `done` messages counted
        self.eos = False               # the in-band eos mark has been handled
        self.ended = False             # finish() ran
        self._quiet_since = None       # last `done` or message once upstream finished

    # ------------------------------------------------------------ what happened
    def system(self, msg) -> bool:
        """From the block's `system` handler. True for a `done` (counted unless it is the grace
        timer's); False for anything else, which the block passes to ``gateway.system_handler``."""
        if not is_done(msg):
            return False
        try:
            timer = pmt.is_integer(pmt.cdr(msg)) and pmt.to_long(pmt.cdr(msg)) == TIMER
        except Exception:                                   # noqa: BLE001 - an odd value counts as upstream
            timer = False
        if not timer:
            self.dones += 1
            if self.upstream_done:
                self._quiet_since = self._clock()
        return True

    def on_message(self) -> None:
        """A message was handled: after upstream finished, the quiet period restarts."""
        if self.upstream_done:
            self._quiet_since = self._clock()

    def on_eos(self) -> None:
        """The block has handled the in-band eos mark."""
        self.eos = True

    # ------------------------------------------------------------ when to end
    @property
    def upstream_done(self) -> bool:
        return self.dones >= self.edges

    def left(self) -> float | None:
        """Seconds of quiet still to wait; None while upstream has not finished."""
        if not self.upstream_done:
            return None
        if self.eos:
            return 0.0
        return max(0.0, self.grace_s - (self._clock() - self._quiet_since))

    def due(self) -> bool:
        """Upstream finished and either the eos mark was handled or `grace_s` passed quietly."""
        left = self.left()
        return left is not None and left <= 0.0

    # ------------------------------------------------------------ message-only blocks
    def arm(self, block) -> None:
        """Post a TIMER `done` to `block` when the quiet period would end (one timer at a time;
        the block calls arm() again if it was not due then)."""
        left = self.left()
        with self._lock:
            if left is None or self._timer is not None or self.ended:
                return
            t = threading.Timer(left + 1e-3, self._fire, args=(block,))
            t.daemon = True
            self._timer = t
        t.start()

    def _fire(self, block) -> None:
        with self._lock:
            self._timer = None
        try:
            block._post(SYSTEM, done_msg(TIMER))
        except Exception:                                   # noqa: BLE001 - timer thread
            pass

    def cancel(self) -> None:
        """Stop a pending timer (call from the block's stop())."""
        with self._lock:
            t, self._timer = self._timer, None
        if t is not None:
            t.cancel()

    def finish(self, block) -> bool:
        """End `block` (once): GNU Radio's own `done` handling. False if it had already ended."""
        if self.ended:
            return False
        self.ended = True
        self.cancel()
        block.gateway.system_handler(done_msg(1))
        return True


def drain(block, handlers) -> None:
    """Handle the messages still queued on a block's ports: `handlers` is ((port, handler), ...).
    GNU Radio serves a block's ports in an arbitrary (pointer) order, so `done` can be handled
    before messages that were posted ahead of it."""
    for port, handler in handlers:
        while block.nmsgs(port):
            msg = block.delete_head_nowait(port)
            if msg is None:
                break
            handler(msg)
