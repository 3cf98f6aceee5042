"""GNU Radio block: packet erasure channel (PDUs in, surviving PDUs out).

Drives one core channel (``core.channels``): Bernoulli(p), Gilbert-Elliott(mean loss p, mean
burst length) or replay of a loss trace file; seeded, so a seed gives the same losses. p can
be changed while running (``set_p``). The end-of-stream mark (metadata ``eos``) always passes
and does not consume a channel draw. Messages: in ``pdus``, ``ctrl`` (dict ``p``); out ``pdus``,
``stats``.

End of stream: when the upstream block finishes, GNU Radio posts ``done`` to this block before
the upstream ``stop()`` has sent its eos mark. This block therefore finishes only after it has
passed the eos mark on, or ``eos_grace_s`` seconds after ``done`` if none comes.
"""
import threading

import pmt
from gnuradio import gr

from .core.channels import make_channel
from ._blockutil import RateLimitedLog, stats_to_pmt
from .packet_pdu import (CTRL, DONE, PDUS, STATS, SYSTEM, BadMessage, is_eos,
                         parse_pdu)


class packet_erasure_channel(gr.basic_block):
    """Drop PDUs: model 'bernoulli' | 'gilbert_elliott' | 'trace'; p in [0, 1]; mean_burst >= 1
    (packets, Gilbert-Elliott); trace_file ('0'/'1' per packet, looped); seed; stats_interval:
    packets between stats messages."""

    def __init__(self, model="bernoulli", p=0.0, mean_burst=2.0, trace_file="", seed=0,
                 stats_interval=125, eos_grace_s=1.0):
        gr.basic_block.__init__(self, name="largesc_packet_erasure_channel", in_sig=None,
                                out_sig=None)
        self.channel = make_channel(model, p, mean_burst, trace_file or None, seed)
        self.model = model
        self.stats_interval = max(1, int(stats_interval))
        self.eos_grace_s = float(eos_grace_s)
        self.counters = {"bad_messages": 0, "eos": 0, "ctrl_msgs": 0}
        self._lock = threading.Lock()
        self._eos_passed = False
        self._done_msg = None
        self._timer = None
        self._log = RateLimitedLog(self.logger)
        self.message_port_register_in(PDUS)
        self.set_msg_handler(PDUS, self.handle_pdu)
        self.set_msg_handler(SYSTEM, self.handle_system)
        self.message_port_register_in(CTRL)
        self.set_msg_handler(CTRL, self.handle_ctrl)
        self.message_port_register_out(PDUS)
        self.message_port_register_out(STATS)

    def set_p(self, p):
        """Callback: new mean loss probability (Bernoulli / Gilbert-Elliott)."""
        with self._lock:
            self.channel.set_p(p)

    def handle_ctrl(self, msg):
        """`ctrl` port: dict PMT {"p": value} (same as set_p); anything else is dropped."""
        try:
            items = pmt.to_python(msg) if pmt.is_dict(msg) else None
            if not isinstance(items, dict) or set(items) != {"p"}:
                raise ValueError("expected a dict {'p': value}")
            self.set_p(items["p"])
            self.counters["ctrl_msgs"] += 1
        except Exception as exc:                            # noqa: BLE001 - hostile input
            self._bad("ctrl", f"ctrl message: {exc}")

    def handle_pdu(self, msg):
        try:
            meta, _ = parse_pdu(msg)
            if is_eos(meta):
                self.counters["eos"] += 1
                self.message_port_pub(PDUS, msg)
                self._eos_passed = True
                if self._done_msg is not None:
                    self._finish()
                return
            with self._lock:
                lost = self.channel.drop()
            if not lost:
                self.message_port_pub(PDUS, msg)
            if self.channel.counters["sent"] % self.stats_interval == 0:
                self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
        except BadMessage as exc:
            self._bad(exc.reason)
        except Exception as exc:                            # noqa: BLE001 - never escape
            self._bad(type(exc).__name__, f"{type(exc).__name__}: {exc}")

    def handle_system(self, msg):
        """`done` from upstream: finish now if eos passed, else after eos or the grace period."""
        try:
            if not (pmt.is_pair(msg) and pmt.eq(pmt.car(msg), DONE)):
                self.gateway.system_handler(msg)
            elif self._eos_passed or pmt.to_long(pmt.cdr(msg)) == -1:
                self._done_msg = msg
                self._finish()
            elif self._done_msg is None:
                self._done_msg = msg
                self._timer = threading.Timer(self.eos_grace_s, self._post_timeout)
                self._timer.daemon = True
                self._timer.start()
        except Exception as exc:                            # noqa: BLE001
            self._bad("system", f"system message: {exc}")

    def _post_timeout(self):
        try:
            self._post(SYSTEM, pmt.cons(DONE, pmt.from_long(-1)))
        except Exception:                                   # noqa: BLE001
            pass

    def _finish(self):
        if self._timer is not None:
            self._timer.cancel()
        self.gateway.system_handler(pmt.cons(DONE, pmt.from_long(1)))

    def _bad(self, kind, text=None):
        self.counters["bad_messages"] += 1
        self._log.warn(kind, f"dropped a message: {text or kind}")

    def stop(self):
        if self._timer is not None:
            self._timer.cancel()
        try:
            self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
        except Exception as exc:                            # noqa: BLE001 - stop() must not raise
            self._log.warn("stop", f"stop: {exc}")
        return True

    def get_stats(self):
        """Counters: sent, dropped, loss (dropped / sent), p, bad_messages, eos."""
        c = dict(self.channel.counters)
        c.update(self.counters)
        c["loss"] = c["dropped"] / c["sent"] if c["sent"] else 0.0
        c["p"] = self.channel.p
        return c
