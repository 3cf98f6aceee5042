"""GNU Radio block: Stats to Stream (dict messages -> float streams, one per key), for QT GUI
sinks (Number Sink, Vector Sink, Time Sink), probes and file sinks.

Messages in: `stats` (the counters every block publishes), `feedback` (LargeSC RX's loss
reports: `loss_rate`, `window_loss`), `pdus` (PDUs: their metadata is read, e.g. the
allocation `n_send` / `n_repeat` of each packet LargeSC TX sends). All three are read the same
way: a dict (or a PDU's metadata dict) that has at least one of `keys` gives one item on every
output, output i carrying keys[i] (a key the message lacks keeps its last value; 0 before the
first). Values must be numbers (bools count as 0/1); messages without any of the keys, or that
are not dicts or PDUs, are counted and dropped.

The streams therefore run at the message rate (one item per loss report, one per packet), not
at a sample rate. `window` = 1: one float per message (Number Sink, probes). `window` = W > 1:
each item is a vector of the last W values (oldest first, 0 before the first W messages), so a
QT GUI Vector Sink of length W redraws a scrolling history at every message (x axis: set x_start
to -(W - 1) / rate and x_step to 1 / rate for seconds before now). (A QT GUI Time Sink redraws
only once it has collected its whole buffer: at one report per second that takes minutes.)

`qt_batch` (default on) writes each message as a batch of identical items, because GNU Radio
3.10's QT sinks do not draw slow single items: the Number Sink takes float items only in
multiples of its VOLK alignment (output_multiple() is 8 on this AVX machine; measured: one item
per message reached it only every 8th message), and the Vector Sink draws the second item of
each call (vector_sink_f_impl::work reads input + vlen). So a batch is 16 values for window 1
(a multiple of 8 and of 16, for wider SIMD) and 2 vectors for window > 1. Off: exactly one item
per message (file sinks, probes, tests).

Scheduling as the depacketizer's: a source block whose work() returns 0 while no message is
pending; GNU Radio then parks its thread until a message arrives (or a 250 ms timer), so it
does not spin. At most 4096 messages (64 with window > 1: the newest holds the history anyway)
wait for a slow sink; older ones are dropped (counted as dropped_items).

End of stream (gr_support/end_of_stream.py, the rule every message block follows): GNU Radio
posts `done` on the `system` port when an upstream block finishes, before that block's stop()
publishes its final stats (and the adaptive controller its eos PDU). So the block counts
`upstream_edges` `done` messages, then keeps taking messages until none has come for
`eos_grace_s`, and finishes once everything pending has been written.
"""
import collections
import math
import numbers

import numpy as np
import pmt
from gnuradio import gr

from .gr_support import params as P
from .gr_support.end_of_stream import EndOfStream
from .gr_support.pdu import FEEDBACK, PDUS, STATS, SYSTEM
from .gr_support.stats import RateLimitedLog, publish_final_stats, stats_to_pmt

NAME = "stats_to_stream"
MAX_KEYS = 8
MAX_WINDOW = 1000                  # values per history vector
MAX_PENDING = 4096                 # messages waiting for the sink (window 1)
MAX_PENDING_HISTORY = 64           # with window > 1 the newest item has the whole history
QT_BATCH_VALUES = 16               # a multiple of the QT Number Sink's output multiple (8 here)
QT_BATCH_VECTORS = 2               # the QT Vector Sink draws the second item of a call
_KEY = "a non-empty list of 1..8 distinct key names (str), e.g. ['loss_rate']"


def check_keys(block, keys):
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)) or not 1 <= len(keys) <= MAX_KEYS:
        P.fail(block, "keys", _KEY, keys)
    if not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
        P.fail(block, "keys", _KEY, keys)
    return tuple(keys)


class stats_to_stream(gr.sync_block):
    """Dict messages (stats, feedback, PDU metadata) -> one float32 stream per key.

    Parameters (checked at construction; a bad value raises ValueError naming it):
    keys: 1..8 distinct key names, one output each; window: 1..1000 values per output item
    (1: a float per message; W: a vector of the last W values); qt_batch: write each message as
    a batch of identical items for GNU Radio's QT sinks (16 for window 1, 2 otherwise; see the
    module doc) instead of one item; stats_interval: 1..10**6 messages between `stats`
    messages (this block's own counters); eos_grace_s: 0..3600 s without messages after the
    upstream finished before this block finishes (the final stats come after `done`);
    upstream_edges: message connections into the block, 1..64 (it waits for a `done` from each).
    """

    def __init__(self, keys=("loss_rate",), window=1, qt_batch=True, stats_interval=125,
                 eos_grace_s=1.0, upstream_edges=1):
        keys = check_keys(NAME, keys)
        window = P.check_int(NAME, "window", window, 1, MAX_WINDOW, "values per item")
        qt_batch = P.check_bool(NAME, "qt_batch", qt_batch)
        stats_interval = P.check_int(NAME, "stats_interval", stats_interval, 1,
                                     P.MAX_STATS_INTERVAL, "messages")
        eos_grace_s = P.check_float(NAME, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        upstream_edges = P.check_int(NAME, "upstream_edges", upstream_edges, 1, P.MAX_EDGES,
                                     "message connections")
        out = np.float32 if window == 1 else (np.float32, window)
        gr.sync_block.__init__(self, name="largesc_stats_to_stream", in_sig=None,
                               out_sig=[out] * len(keys))
        self.keys = keys
        self.window = window
        self.batch = (QT_BATCH_VALUES if window == 1 else QT_BATCH_VECTORS) if qt_batch else 1
        self.stats_interval = stats_interval
        self.last = [0.0] * len(keys)
        self._history = np.zeros((len(keys), window), np.float32)
        self._max_pending = MAX_PENDING if window == 1 else MAX_PENDING_HISTORY
        self._pending = collections.deque()
        self.end = EndOfStream(eos_grace_s, upstream_edges)
        self._msgs = 0
        self.counters = {"messages": 0, "items": 0, "ignored": 0, "dropped_items": 0,
                         "missing_values": 0}
        self._log = RateLimitedLog(self.logger)
        for port in (STATS, FEEDBACK, PDUS):
            self.message_port_register_in(port)
            self.set_msg_handler(port, self.handle_msg)
        self.set_msg_handler(SYSTEM, self.handle_system)
        self.message_port_register_out(STATS)

    # ------------------------------------------------------------- messages
    def handle_msg(self, msg):
        self.end.on_message()
        try:
            self.counters["messages"] += 1
            d = _as_dict(msg)
            if d is None:
                raise ValueError("not a dict or a PDU with a metadata dict")
            values, found = list(self.last), 0
            for i, k in enumerate(self.keys):
                if k not in d:
                    continue
                v = d[k]
                if isinstance(v, numbers.Real) and math.isfinite(float(v)):
                    values[i] = float(v)
                    found += 1
                else:
                    self.counters["missing_values"] += 1
            if not found:
                raise ValueError(f"none of the keys {list(self.keys)} with a finite number")
            self.last = values
            self._history[:, :-1] = self._history[:, 1:]
            self._history[:, -1] = values
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self.counters["dropped_items"] += 1
            self._pending.append(self._history.copy())
        except Exception as exc:                            # noqa: BLE001 - never escape
            self.counters["ignored"] += 1
            self._log.warn("ignored", f"stats_to_stream: ignored a message ({exc}); "
                                      f"{self.counters['ignored']} so far")
        self._msgs += 1
        if self._msgs % self.stats_interval == 0:
            self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))

    def handle_system(self, msg):
        """Upstream finished: finish after the grace period, once the pending items are written
        (see the module doc)."""
        try:
            if not self.end.system(msg):
                self.gateway.system_handler(msg)
        except Exception as exc:                            # noqa: BLE001
            self._log.warn("system", f"system message: {exc}")

    # ----------------------------------------------------------------- work
    def work(self, input_items, output_items):
        b = self.batch
        m = min(len(self._pending), len(output_items[0]) // b)    # whole batches only
        if m > 0:
            items = np.stack([self._pending.popleft() for _ in range(m)])     # [m, keys, window]
            items = np.repeat(items, b, axis=0)
            n = m * b
            for i, out in enumerate(output_items):
                out[:n] = items[:, i, :] if self.window > 1 else items[:, i, 0]
            self.counters["items"] += n
            return n
        if self.end.due() and not self._pending and not any(self.nmsgs(p) for p in (STATS, FEEDBACK, PDUS)):
            return -1
        return 0

    def start(self):
        self.end.reset()
        return True

    def stop(self):
        self.end.cancel()
        publish_final_stats(self, STATS)
        return True

    def get_stats(self):
        """Counters: messages, items written, ignored messages, dropped_items (sink too slow),
        missing_values (a key with a non-number), pending."""
        c = dict(self.counters)
        c["pending"] = len(self._pending)
        return c


def _as_dict(msg):
    """A Python dict from a dict PMT or from a PDU's metadata; None otherwise."""
    if pmt.is_pair(msg) and not pmt.is_dict(msg):           # a PDU: (meta . vector)
        msg = pmt.car(msg)
    if not pmt.is_dict(msg) or pmt.is_null(msg):
        return None
    d = pmt.to_python(msg)
    return d if isinstance(d, dict) else None
