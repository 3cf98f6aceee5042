"""GNU Radio block: adaptive controller + packetizer (tokens + activity in, PDUs out).

Controller and packetizer are one block on purpose: the copy of frame n-d that packet n
carries must match what was sent for frame n-d (R_n <= N_{n-d}), so the allocation history
and the token history live in one place and no per-frame side channel is needed between two
blocks. The block drives a core ``AdaptiveController`` (decisions) and a core ``Packetizer``
(bytes); all logic is in core.

Inputs: stream 0 = int32 vector of 8 tokens per 80 ms frame, stream 1 = float32 latent
activity (dB) of the frame. Messages in: ``feedback`` (dict with ``loss_rate``, e.g. from the
depacketizer; a report expires after ``feedback_timeout`` frames without a new one, see
core.link.controller.LossRateInput), ``ctrl`` (dict of bandwidth_bps / loss_rate / dtx),
``text`` (a string, or a PDU of UTF-8 bytes: a message for the text side channel), ``ptt``
(a bool: False ends the over). Messages out: ``pdus`` (one PDU per packet; metadata ``seq``,
``epoch``, ``frame``, ``n_send``, ``n_repeat``, ``importance``, ``payload_bits``,
``overhead_bits`` = header + CRC + pad; text packets have metadata ``text_kind``, ``frame``,
``payload_bits``, ``overhead_bits``; an end-of-stream mark ``eos`` when the flowgraph stops,
after the end-of-over packets), ``stats``. Text side channel: docs/text-channel.md.
"""
import random
import threading

import numpy as np
import pmt
from gnuradio import gr

from .core.link.controller import DEFAULT_FEEDBACK_TIMEOUT, MAX_TOKENS, MIN_TOKENS, AdaptiveController, LossRateInput
from .core.link.frames import CODEBOOK_SIZE, FRAME_RATE, NUM_CODEBOOKS, TOKEN_BPS
from .core.link.packet import EPOCH_MOD, MAX_FPP, Packetizer
from .core.link.packet_formats import DEFAULT_FORMAT, FORMATS, get_format
from .core.link.text import KIND_NAMES, MAX_TEXT_BYTES, TextSender, check_callsign, chunk_bits, chunk_tokens, pack_chunk
from .gr_support import params as P
from .gr_support.pdu import CTRL, FEEDBACK, PDUS, STATS, BadMessage, eos_pdu, make_pdu, parse_pdu
from .gr_support.ports import PTT, TEXT
from .gr_support.stage_timing import StageObservers
from .gr_support.stats import RateLimitedLog, stats_to_pmt

NAME = "adaptive_controller"
MIN_BPS = MIN_TOKENS * TOKEN_BPS            # 550 bps: 4 tokens per frame
MAX_BPS = MAX_TOKENS * TOKEN_BPS            # 2062.5 bps: 8 originals + 7 copies per frame
MAX_WINDOW = 1000                           # frames (80 s)


def check_bandwidth(block, value, name="bandwidth_bps"):
    return P.check_float(block, name, value, MIN_BPS, MAX_BPS, what="bps")


def check_loss_rate(block, value, name="loss_rate"):
    return P.check_float(block, name, value, 0.0, 1.0)


def check_packet_format(block, value, frames_per_packet=1):
    """One of FORMATS; the compact formats need frames_per_packet = 1. Returns the PacketFormat."""
    fmt = get_format(P.check_choice(block, "packet_format", value, FORMATS))
    if frames_per_packet > fmt.max_fpp:
        P.fail(block, "frames_per_packet", f"<= {fmt.max_fpp} with packet_format {fmt.name!r}",
               frames_per_packet)
    return fmt


def check_callsign_param(block, value):
    """'' or a call sign (core.link.text.check_callsign), as the module's parameter error."""
    try:
        return check_callsign(value)
    except ValueError:
        P.fail(block, "callsign", "'' or up to 16 characters of A-Z, 0-9, '/' and '-'", value)


def check_text_share(block, value, name="text_share"):
    return P.check_float(block, name, value, 0.0, 0.5)


class adaptive_controller(gr.sync_block):
    """Per frame: choose N (codebooks sent) and R (codebooks of frame n-d repeated), build a packet.

    Parameters (checked at construction and by the setters; a bad value raises ValueError
    naming it):
    bandwidth_bps: payload budget B in [550, 2062.5] bps (4..15 tokens per frame; a value above
    2062.5 is an error, not a cap: no allocation can use it); d: copy distance 1..8 frames;
    loss_rate: p in [0, 1], used until (or, with use_feedback False, instead of) receiver
    feedback; dtx / dtx_tokens: non-speech frames send dtx_tokens in 0..3 (0: nothing but the
    header); window: 1..1000 frames over which the mean rate <= B; frames_per_packet: 1..8
    frames grouped per packet (needs d >= frames_per_packet); epoch: 0..3, or -1 for a random
    epoch (tells a restarted sender apart); stats_interval: 1..10**6 frames between ``stats``
    messages; feedback_timeout: 0..10**6 frames a feedback report holds; when the feedback
    channel stays silent that long the controller goes back to the configured loss_rate (the
    safe default; counted as ``feedback_expired``); 0 = a report holds until the next one;
    packet_format: 'v1' (default; 24-bit header + CRC-8), 'compact' (12-bit header, no CRC: for
    links that check frames, the GMSK PHY or UDP) or 'compact_crc' (12-bit header + CRC-8); the
    compact formats carry one frame per packet (frames_per_packet 1) and no epoch. The receiver
    (depacketizer) must use the same format.
    callsign: '' (none) or up to 16 characters of A-Z, 0-9, '/', '-': sent at the start, every
    `callsign_period` frames (1..10**6) and in the end-of-over packets; text_share: the share of
    B in [0, 0.5] that text may take from speech frames (silent frames give their unused budget
    first; text never adds to B).
    """

    def __init__(self, bandwidth_bps=1100.0, d=1, loss_rate=0.0, use_feedback=True, dtx=False,
                 dtx_tokens=1, window=25, frames_per_packet=1, epoch=-1, stats_interval=125,
                 feedback_timeout=DEFAULT_FEEDBACK_TIMEOUT, packet_format=DEFAULT_FORMAT,
                 callsign="", text_share=0.05, callsign_period=125):
        bandwidth_bps = check_bandwidth(NAME, bandwidth_bps)
        d = P.check_int(NAME, "d", d, 1, P.MAX_D, "frames")
        loss_rate = check_loss_rate(NAME, loss_rate)
        use_feedback = P.check_bool(NAME, "use_feedback", use_feedback)
        dtx = P.check_bool(NAME, "dtx", dtx)
        dtx_tokens = P.check_int(NAME, "dtx_tokens", dtx_tokens, 0, MIN_TOKENS - 1)
        window = P.check_int(NAME, "window", window, 1, MAX_WINDOW, "frames")
        frames_per_packet = P.check_int(NAME, "frames_per_packet", frames_per_packet, 1, MAX_FPP)
        fmt = check_packet_format(NAME, packet_format, frames_per_packet)
        if frames_per_packet > d:
            P.fail(NAME, "frames_per_packet", f"<= d = {d} (a copy never shares a packet with "
                   f"its original)", frames_per_packet)
        epoch = P.check_int(NAME, "epoch", epoch, -1, EPOCH_MOD - 1, "-1: random")
        stats_interval = P.check_int(NAME, "stats_interval", stats_interval, 1,
                                     P.MAX_STATS_INTERVAL, "frames")
        feedback_timeout = P.check_int(NAME, "feedback_timeout", feedback_timeout, 0,
                                       P.MAX_STATS_INTERVAL, "frames; 0: never expires")
        callsign = check_callsign_param(NAME, callsign)
        text_share = check_text_share(NAME, text_share)
        callsign_period = P.check_int(NAME, "callsign_period", callsign_period, 1,
                                      P.MAX_STATS_INTERVAL, "frames")
        gr.sync_block.__init__(self, name="largesc_adaptive_controller",
                               in_sig=[(np.int32, NUM_CODEBOOKS), np.float32], out_sig=None)
        self._lock = threading.Lock()
        self.stage_observers = StageObservers()   # "controller": allocation + packetizer, per frame
        self.ctl = AdaptiveController(bandwidth_bps, window=window, d=d, dtx=dtx,
                                      dtx_tokens=dtx_tokens, text_share=text_share)
        self.text = TextSender(callsign, period_frames=callsign_period)
        self._over = True                       # ptt: an over is in progress
        if epoch < 0:
            epoch = random.SystemRandom().randrange(EPOCH_MOD)
        self.fmt = fmt
        self.pkt = Packetizer(d=d, epoch=epoch, fpp=frames_per_packet, fmt=fmt)
        self.loss = LossRateInput(loss_rate, feedback_timeout)
        self.use_feedback = use_feedback
        self.stats_interval = stats_interval
        self._eos_sent = False
        self._group_meta = None
        self.counters = {"feedback_msgs": 0, "ctrl_msgs": 0, "bad_messages": 0, "bad_tokens": 0,
                         "text_msgs": 0, "text_packets": 0, "text_overhead_bits": 0,
                         "end_of_over_packets": 0, "end_of_over_skipped": 0}
        self._log = RateLimitedLog(self.logger)
        self.message_port_register_in(FEEDBACK)
        self.set_msg_handler(FEEDBACK, self.handle_feedback)
        self.message_port_register_in(CTRL)
        self.set_msg_handler(CTRL, self.handle_ctrl)
        self.message_port_register_in(TEXT)
        self.set_msg_handler(TEXT, self.handle_text)
        self.message_port_register_in(PTT)
        self.set_msg_handler(PTT, self.handle_ptt)
        self.message_port_register_out(PDUS)
        self.message_port_register_out(STATS)

    @property
    def use_feedback(self):
        """Follow receiver reports (True) or use the configured loss_rate only (False)."""
        return self._use_feedback

    @use_feedback.setter
    def use_feedback(self, on):
        on = P.check_bool(NAME, "use_feedback", on)
        with self._lock:                       # work() and handle_feedback() read both
            self._use_feedback = on
            if not on:
                self.loss.feedback = None      # the configured value applies from the next frame

    @property
    def loss_rate(self):
        """p used for the next frame: the latest unexpired feedback report, else the configured value."""
        return self.loss.value

    # ------------------------------------------------------------ callbacks
    def set_bandwidth(self, bandwidth_bps):
        """Payload budget B in [550, 2062.5] bps, from the next frame on."""
        b = check_bandwidth(NAME, bandwidth_bps)
        with self._lock:
            self.ctl.set_bandwidth(b)

    def set_loss_rate(self, loss_rate):
        """Configured p in [0, 1]; applies from the next frame until the next feedback report."""
        p = check_loss_rate(NAME, loss_rate)
        with self._lock:
            self.loss.set_configured(p)

    def set_dtx(self, dtx):
        dtx = P.check_bool(NAME, "dtx", dtx)
        with self._lock:
            self.ctl.dtx = dtx

    def handle_feedback(self, msg):
        """`feedback` port: dict PMT with `loss_rate` in [0, 1]; anything else is dropped."""
        try:
            p = pmt.to_double(pmt.dict_ref(msg, pmt.intern("loss_rate"), pmt.PMT_NIL)) \
                if pmt.is_dict(msg) else None
        except Exception:                                   # noqa: BLE001 - hostile input
            p = None
        if p is None or not 0.0 <= p <= 1.0:
            self.counters["bad_messages"] += 1
            self._log.warn("feedback", "dropped a feedback message without a valid loss_rate")
            return
        self.counters["feedback_msgs"] += 1
        with self._lock:                       # checked under the lock: a report never lands
            if self._use_feedback:             # after use_feedback was turned off
                self.loss.report(p)

    def handle_ctrl(self, msg):
        """`ctrl` port: dict PMT with any of bandwidth_bps, loss_rate, dtx (as the setters).

        All values are checked (same ranges as the parameters) before any is applied; a bad
        message changes nothing.
        """
        checks = {"bandwidth_bps": check_bandwidth, "loss_rate": check_loss_rate,
                  "dtx": lambda block, v: v if isinstance(v, bool) else P.fail(block, "dtx", "a bool", v)}
        try:
            items = pmt.to_python(msg) if pmt.is_dict(msg) else None
            if not isinstance(items, dict) or not items:
                raise ValueError("not a non-empty dict")
            for k, v in items.items():
                if k not in checks:
                    raise ValueError(f"unknown key {k!r}")
                checks[k](NAME + " ctrl", v)
        except Exception as exc:                            # noqa: BLE001 - hostile input
            self.counters["bad_messages"] += 1
            self._log.warn("ctrl", f"dropped a ctrl message ({exc}; want bandwidth_bps in "
                           f"[550, 2062.5], loss_rate in [0, 1], dtx bool)")
            return
        if "bandwidth_bps" in items:
            self.set_bandwidth(items["bandwidth_bps"])
        if "loss_rate" in items:
            self.set_loss_rate(items["loss_rate"])
        if "dtx" in items:
            self.set_dtx(items["dtx"])
        self.counters["ctrl_msgs"] += 1

    def handle_text(self, msg):
        """`text` port: a string, or a PDU / u8vector of UTF-8 bytes (1..200 of them), queued for
        the text side channel; anything else (invalid UTF-8, too long) is dropped and counted."""
        try:
            if pmt.is_symbol(msg):
                text = pmt.symbol_to_string(msg)
            elif pmt.is_u8vector(msg):
                text = bytes(pmt.u8vector_elements(msg))
            else:
                text = parse_pdu(msg)[1]
            with self._lock:
                self.text.submit(text)
            self.counters["text_msgs"] += 1
        except (BadMessage, ValueError) as exc:
            self.counters["bad_messages"] += 1
            self._log.warn("text", f"dropped a text message ({exc}; want 1..{MAX_TEXT_BYTES} bytes "
                           "of UTF-8 as a string or a PDU)")
        except Exception as exc:                            # noqa: BLE001 - hostile input
            self.counters["bad_messages"] += 1
            self._log.warn("text", f"dropped a text message ({type(exc).__name__})")

    def handle_ptt(self, msg):
        """`ptt` port: a bool PMT; False ends the over (end-of-over packets with the call sign),
        True starts the next one (the call sign is sent again at its start)."""
        if not pmt.is_bool(msg):
            self.counters["bad_messages"] += 1
            self._log.warn("ptt", "dropped a ptt message that is not a bool")
            return
        with self._lock:
            on = pmt.to_bool(msg)
            if not on and self._over:
                self._end_of_over()
            self._over = on

    def _end_of_over(self):
        """End-of-over packets, as many of the repeats as the unused budget pays for."""
        for chunk in self.text.end_of_over():
            if not self.ctl.spend_text(chunk_tokens(chunk)):
                self.counters["end_of_over_skipped"] += 1
                continue
            self.text.count_sent(chunk)
            self._publish_text(chunk, self.pkt.frame_index)
            self.counters["end_of_over_packets"] += 1

    def _publish_text(self, chunk, frame):
        bits = chunk_bits(chunk, self.fmt)
        self.counters["text_packets"] += 1
        self.counters["text_overhead_bits"] += bits["total_bits"] - bits["payload_bits"]
        meta = {"text_kind": KIND_NAMES[chunk.kind], "frame": frame, "payload_bits": bits["payload_bits"],
                "overhead_bits": bits["total_bits"] - bits["payload_bits"]}
        self.message_port_pub(PDUS, make_pdu(pack_chunk(chunk, self.fmt), meta))

    # ----------------------------------------------------------------- work
    def work(self, input_items, output_items):
        toks, act = input_items[0], input_items[1]
        n_items = len(act)
        with self._lock:
            for i in range(n_items):
                row = toks[i]
                if row.min() < 0 or row.max() >= CODEBOOK_SIZE:
                    self.counters["bad_tokens"] += 1
                    self._log.warn("tokens", "token out of [0, 2048) from the encoder; clipped")
                    row = np.clip(row, 0, CODEBOOK_SIZE - 1)
                frame = self.pkt.frame_index
                data = self.stage_observers.timed("controller", self._allocate_and_pack, row, float(act[i]),
                                                  frame_index=frame, tokens=row)
                if data is not None:
                    self._publish(data)
                if self.ctl.counters["frames"] % self.stats_interval == 0:
                    self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
        return n_items

    def _allocate_and_pack(self, row, activity):
        """One frame: the controller's allocation, then the packetizer (bytes of a finished packet or None)."""
        frame = self.pkt.frame_index
        if self._over:                              # between overs (ptt False) no call sign
            self.ctl.reserve_text(self.text.end_of_over_tokens())   # paid for from the start
            self.text.tick(frame)
        a = self.ctl.step(activity, self.loss.tick(), text_tokens=self.text.head_tokens())
        if a.text_tokens:
            self._publish_text(self.text.pop(), frame)
        if self._group_meta is None:
            self._group_meta = {"seq": frame % self.fmt.seq_mod, "frame": frame, "allocs": []}
        self._group_meta["allocs"].append((a.n_send, a.n_repeat, a.importance))
        return self.pkt.push(row.tolist(), a.n_send, a.n_repeat)

    def _publish(self, data):
        g, self._group_meta = self._group_meta, None
        bits = self.fmt.bit_budget([(n, r) for n, r, _ in g["allocs"]])
        meta = {"seq": g["seq"], "epoch": self.pkt.epoch, "frame": g["frame"],
                "n_send": g["allocs"][0][0], "n_repeat": g["allocs"][0][1],
                "importance": float(g["allocs"][0][2]), "frames": len(g["allocs"]),
                "payload_bits": bits["payload_bits"],
                "overhead_bits": bits["total_bits"] - bits["payload_bits"]}
        self.message_port_pub(PDUS, make_pdu(data, meta))

    def start(self):
        """A new run of the flowgraph (also after stop/wait): it will send its own eos mark. The
        packetizer goes on counting frames (same epoch), so the receiver continues the stream."""
        with self._lock:
            self._eos_sent = False
            self._over = True
        return True

    def stop(self):
        """End of input (or flowgraph stop): send the last partial packet and the eos mark."""
        try:
            with self._lock:
                if not self._eos_sent:
                    self._eos_sent = True
                    data = self.pkt.flush()
                    if data is not None:
                        self._publish(data)
                    if self._over:
                        self._end_of_over()
                        self._over = False
                    self.message_port_pub(PDUS, eos_pdu(self.pkt.frame_index, self.pkt.epoch))
                    self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
        except Exception as exc:                            # noqa: BLE001 - stop() must not raise
            self._log.warn("stop", f"stop: {exc}")
        return True

    def get_stats(self):
        """Counters: frames, packets, payload/overhead bits and their mean rates, DTX frames, p."""
        c = dict(self.ctl.counters)
        c.update(self.pkt.counters)
        c.update(self.counters)
        f = max(1, c["frames"])
        c["payload_bps"] = c["payload_bits"] * FRAME_RATE / f
        c["overhead_bps"] = c["overhead_bits"] * FRAME_RATE / f
        c.update(self.text.counters)
        c["text_bps"] = c["text_payload_bits"] * FRAME_RATE / f
        c["total_payload_bps"] = c["payload_bps"] + c["text_bps"]
        c["on_air_bps"] = c["total_payload_bps"] + c["overhead_bps"] + \
            c["text_overhead_bits"] * FRAME_RATE / f
        c["callsign"] = self.text.callsign
        c["packet_format"] = self.fmt.name
        c["loss_rate"] = self.loss.value
        c["loss_rate_configured"] = self.loss.configured
        c["feedback_active"] = int(self.loss.from_feedback)
        c["feedback_expired"] = self.loss.counters["expired"]
        c["bandwidth_bps"] = self.ctl.bandwidth_bps
        return c
