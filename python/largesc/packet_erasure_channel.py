"""GNU Radio block: packet erasure channel (PDUs in, surviving PDUs out).

Drives one core channel (``core.link.channels``): Bernoulli(p), Gilbert-Elliott(mean loss p, mean
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

from .core.link.channels import make_channel
from .gr_support import params as P
from .gr_support.end_of_stream import EndOfStream, drain
from .gr_support.pdu import CTRL, PDUS, STATS, SYSTEM, BadMessage, is_eos, parse_pdu
from .gr_support.stats import RateLimitedLog, publish_final_stats, stats_to_pmt

NAME = "packet_erasure_channel"
MODELS = ("bernoulli", "gilbert_elliott", "ge", "trace")      # 'ge': short for gilbert_elliott
MAX_BURST = 10 ** 6                                             # packets


def check_p(p, mean_burst=None):
    """p in [0, 1]; with a Gilbert-Elliott mean burst L also p <= L / (L + 1) or p = 1."""
    p = P.check_float(NAME, "p", p, 0.0, 1.0)
    if mean_burst is not None and p < 1.0 and p > mean_burst / (mean_burst + 1.0) + 1e-12:
        P.fail(NAME, "p", f"<= mean_burst / (mean_burst + 1) = {mean_burst / (mean_burst + 1.0):.4g} "
               f"or 1 (Gilbert-Elliott with mean_burst {mean_burst:g}; raise mean_burst to "
               f">= {p / (1 - p):.3g})", p)
    return p


class packet_erasure_channel(gr.basic_block):
    """Drop PDUs.

    Parameters (checked at construction; a bad value raises ValueError naming it):
    model: 'bernoulli' | 'gilbert_elliott' ('ge') | 'trace'; p: mean loss in [0, 1] (for
    Gilbert-Elliott also <= mean_burst / (mean_burst + 1), or 1; also set_p); mean_burst:
    1..10**6 packets (Gilbert-Elliott); trace_file: an existing file of '0'/'1' per packet,
    looped (required with 'trace'; '' otherwise); seed: 0..2**32-1; stats_interval: 1..10**6
    packets between stats messages; eos_grace_s: 0..3600 s.
    """

    def __init__(self, model="bernoulli", p=0.0, mean_burst=2.0, trace_file="", seed=0,
                 stats_interval=125, eos_grace_s=1.0):
        model = P.check_choice(NAME, "model", model, MODELS)
        mean_burst = P.check_float(NAME, "mean_burst", mean_burst, 1.0, MAX_BURST, what="packets")
        p = check_p(p, mean_burst if model in ("gilbert_elliott", "ge") else None)
        trace_file = P.check_file(NAME, "trace_file", trace_file, allow_empty=model != "trace")
        seed = P.check_int(NAME, "seed", seed, 0, P.MAX_SEED)
        stats_interval = P.check_int(NAME, "stats_interval", stats_interval, 1,
                                     P.MAX_STATS_INTERVAL, "packets")
        eos_grace_s = P.check_float(NAME, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        if model == "trace":
            try:
                channel = make_channel(model, p, mean_burst, trace_file, seed)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                P.fail(NAME, "trace_file", f"a loss trace of '0'/'1' characters ({exc})", trace_file)
        else:
            channel = make_channel(model, p, mean_burst, None, seed)
        gr.basic_block.__init__(self, name="largesc_packet_erasure_channel", in_sig=None,
                                out_sig=None)
        self.channel = channel
        self.model = model
        self.stats_interval = stats_interval
        self.eos_grace_s = eos_grace_s
        self.counters = {"bad_messages": 0, "eos": 0, "ctrl_msgs": 0}
        self._lock = threading.Lock()
        self.end = EndOfStream(eos_grace_s)              # gr_support/end_of_stream.py
        self._log = RateLimitedLog(self.logger)
        self.message_port_register_in(PDUS)
        self.set_msg_handler(PDUS, self.handle_pdu)
        self.set_msg_handler(SYSTEM, self.handle_system)
        self.message_port_register_in(CTRL)
        self.set_msg_handler(CTRL, self.handle_ctrl)
        self.message_port_register_out(PDUS)
        self.message_port_register_out(STATS)

    def set_p(self, p):
        """Callback: new mean loss probability (Bernoulli / Gilbert-Elliott; a trace has none)."""
        if self.model == "trace":
            P.fail(NAME, "p", "left alone with model 'trace' (the trace sets the losses)", p)
        p = check_p(p, self.channel.mean_burst if self.model in ("gilbert_elliott", "ge") else None)
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
                self.end.on_eos()
                if self.end.due():
                    self.end.finish(self)
                return
            self.end.on_message()
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
        """`done` from upstream: finish now if eos passed, else after eos or once no packet has
        come for the grace period."""
        try:
            if not self.end.system(msg):
                self.gateway.system_handler(msg)
            elif self.end.due():
                drain(self, ((PDUS, self.handle_pdu),))
                self.end.finish(self)
            else:
                self.end.arm(self)
        except Exception as exc:                            # noqa: BLE001
            self._bad("system", f"system message: {exc}")

    def _bad(self, kind, text=None):
        self.counters["bad_messages"] += 1
        self._log.warn(kind, f"dropped a message: {text or kind}")

    def start(self):
        self.end.reset()                  # a top block can be stopped and started again
        return True

    def stop(self):
        self.end.cancel()
        publish_final_stats(self, STATS)
        return True

    def get_stats(self):
        """Counters: sent, dropped, loss (dropped / sent), p, bad_messages, eos."""
        c = dict(self.channel.counters)
        c.update(self.counters)
        c["loss"] = c["dropped"] / c["sent"] if c["sent"] else 0.0
        c["p"] = self.channel.p
        return c
