"""GNU Radio block: depacketizer / receiver reassembly (PDUs in, one stream item per frame out).

Drives one core ``Reassembler``. Messages in: ``pdus`` (packets, any bytes; the eos mark;
PDU metadata ``frame``, the sender's frame index that the adaptive controller adds, and
``rx_time``, which the PHY receiver adds, place a packet on the sender's timeline where present:
long outages and lost leading packets keep the output aligned, see core.link.reassembly).
Outputs: stream 0 = int32 vector of 8 tokens (0 where unknown), stream 1 = uint8 vector of 8
per-codebook states (frames.STATE_*), one item per frame index, in order. Messages out:
``feedback`` (dict ``loss_rate``, ``window_loss``, ``frames``) every ``feedback_interval``
frames, ``stats`` (counters), ``text`` (one PDU per whole text message: the UTF-8 bytes, metadata
``text``, ``kind`` (text, callsign or end_of_over), ``frame``: the output frame it completed
in; text packets are told from voice packets by their marker, docs/text-channel.md).

Scheduling (GNU Radio 3.10 thread-per-block): message handlers and work() run in this block's
thread, so work() never waits for packets. It returns the frames ready so far, or 0. A
block without stream inputs that returns 0 is put in the scheduler's "blocked on input"
state: the thread sleeps on a condition variable until a message arrives (which wakes it at
once) or a timer expires (250 ms by default; 20 ms in clocked mode, set with
``set_blkd_input_timer_value``, so that frame deadlines are met). See tpb_thread_body.cc:
READY_NO_OUTPUT without inputs becomes BLKD_IN, a timed wait on ``input_cond``, which
``_post`` notifies. It neither spins nor deadlocks. Measured on GNU Radio 3.10.5.1, idle
for 2 s: 8 work() calls and 5 ms CPU (default), 93 calls and 44 ms CPU (clocked).

End of stream: the eos PDU (metadata ``eos``, ``n_frames``) flushes the d_max wait, emits
lost frames up to ``n_frames``, and work() then returns WORK_DONE (-1), so a file-based
flowgraph stops with as many output frames as input frames. The last frame carries a stream tag
``eos`` (value True) on output 0, so token_recovery flushes the frame it holds back; with
``hold_last`` the tag is certain, without it only if the eos mark arrived before the last frame
was written. If the upstream message block
finishes without an eos mark (GNU Radio's ``done`` on the ``system`` port), the block waits
``eos_grace_s`` for one, then flushes and finishes the same way. (The block handles ``system``
itself: GNU Radio's own handler would end it at the next empty work() without a flush.)
"""
import time

import numpy as np
import pmt
from gnuradio import gr

from .core.link.feedback import LossEstimator
from .core.link.frames import FRAME_SECONDS, NUM_CODEBOOKS
from .core.link.packet import PacketError
from .core.link.packet_formats import DEFAULT_FORMAT, FORMATS, get_format
from .core.link.reassembly import Reassembler, packet_hints
from .core.link.text import CALLSIGN, END_OF_OVER, KIND_NAMES, TextReceiver, is_text, unpack_chunk
from .gr_support import params as P
from .gr_support.pdu import DONE, FEEDBACK, PDUS, STATS, SYSTEM, BadMessage, eos_frames, is_eos, make_pdu, parse_pdu
from .gr_support.ports import TEXT
from .gr_support.stage_timing import StageEvent, StageObservers
from .gr_support.stats import RateLimitedLog, publish_final_stats, stats_to_pmt

EOS_TAG = pmt.intern("eos")
NAME = "depacketizer"
MAX_TIMEOUT_MS = 60000.0            # clocked-mode deadline (1 min)
MAX_FEEDBACK_FRAMES = 10 ** 4       # feedback interval / window (frames; 13 min)


class depacketizer(gr.sync_block):
    """Reassemble frames from packets: tokens + per-codebook states, one frame per item.

    Parameters (checked at construction; a bad value raises ValueError naming it):
    d: copy distance used by the sender, 1..8 frames; d_max: frames to wait for copies,
    d..64 (a d_max below d is an error, not raised silently);
    clocked: also declare frames lost by wall-clock deadline (live links);
    timeout_ms: deadline after a frame's expected arrival (clocked mode), 0..60000 ms
    (0: (d_max+1) x 80 ms);
    feedback_interval / feedback_window: 1..10**4 frames between loss reports / per estimate;
    stats_interval: 1..10**6 frames between stats messages;
    eos_grace_s: 0..3600 s to wait for the eos mark after upstream finished;
    hold_last: keep the newest frame until the next one is final or the stream ends, so that
    the ``eos`` tag always lands on the last frame (file runs into a recovery that holds a
    frame back; costs one frame of latency, so leave it off on live links);
    packet_format: 'v1' (default), 'compact' or 'compact_crc', as the sender's
    adaptive_controller (docs/packet-format.md; nothing in a packet tells the formats apart).
    """

    def __init__(self, d=1, d_max=1, clocked=False, timeout_ms=0.0, feedback_interval=12,
                 feedback_window=50, stats_interval=125, eos_grace_s=1.0, hold_last=False,
                 packet_format=DEFAULT_FORMAT):
        d = P.check_int(NAME, "d", d, 1, P.MAX_D, "frames")
        d_max = P.check_int(NAME, "d_max", d_max, 1, P.MAX_D_MAX, "frames")
        if d_max < d:
            P.fail(NAME, "d_max", f">= d = {d} (frames to wait for a copy sent d frames later)", d_max)
        clocked = P.check_bool(NAME, "clocked", clocked)
        timeout_ms = P.check_float(NAME, "timeout_ms", timeout_ms, 0.0, MAX_TIMEOUT_MS,
                                   what="ms; 0: (d_max + 1) x 80 ms")
        feedback_interval = P.check_int(NAME, "feedback_interval", feedback_interval, 1,
                                        MAX_FEEDBACK_FRAMES, "frames")
        feedback_window = P.check_int(NAME, "feedback_window", feedback_window, 1,
                                      MAX_FEEDBACK_FRAMES, "frames")
        stats_interval = P.check_int(NAME, "stats_interval", stats_interval, 1,
                                     P.MAX_STATS_INTERVAL, "frames")
        eos_grace_s = P.check_float(NAME, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        hold_last = P.check_bool(NAME, "hold_last", hold_last)
        packet_format = P.check_choice(NAME, "packet_format", packet_format, FORMATS)
        gr.sync_block.__init__(self, name="largesc_depacketizer", in_sig=None,
                               out_sig=[(np.int32, NUM_CODEBOOKS), (np.uint8, NUM_CODEBOOKS)])
        timeout = timeout_ms / 1000.0 if timeout_ms > 0 else None
        self.clocked = clocked
        self.ra = Reassembler(d=d, d_max=d_max, clocked=self.clocked,
                              frame_period=FRAME_SECONDS, timeout=timeout,
                              packet_format=packet_format)
        self.loss = LossEstimator(window=feedback_window, interval=feedback_interval)
        self.fmt = get_format(packet_format)
        self.text = TextReceiver()
        self.last_callsign = ""
        self.heard = []                 # (frame, kind, text) of every message shown
        self.stats_interval = stats_interval
        self.eos_grace_s = eos_grace_s
        self.hold_last = hold_last
        self._tokens = []               # pending frames, filled by the handler, drained by work
        self._states = []
        self._eos = False
        self._upstream_done_at = None
        self._frames = 0
        self.stage_observers = StageObservers()   # "reassembly": each batch of frames going out
        self.counters = {"bad_messages": 0, "eos": 0, "after_eos": 0, "feedback_msgs": 0,
                         "text_packets": 0, "text_bad": 0, "end_of_over": 0}
        self._log = RateLimitedLog(self.logger)
        self.message_port_register_in(PDUS)
        self.set_msg_handler(PDUS, self.handle_pdu)
        self.set_msg_handler(SYSTEM, self.handle_system)
        self.message_port_register_out(FEEDBACK)
        self.message_port_register_out(STATS)
        self.message_port_register_out(TEXT)
        if self.clocked:
            self.set_blkd_input_timer_value(20)

    # ------------------------------------------------------------- messages
    def handle_pdu(self, msg):
        try:
            meta, data = parse_pdu(msg)
            if is_eos(meta):
                self.counters["eos"] += 1
                if not self._eos:
                    self._eos = True
                    self._take(self.ra.flush(eos_frames(meta)))
                return
            if self._eos:                                   # the stream has ended: nothing may follow
                self.counters["after_eos"] += 1
                return
            if is_text(data, self.fmt):
                self._text(data)
                return
            bad = self.ra.counters["bad"]
            frame, rx_time = packet_hints(meta)
            self._take(self.ra.push(data, self._now(), frame=frame, rx_time=rx_time))
            if self.ra.counters["bad"] != bad:
                self._log.warn("packet", f"dropped an invalid packet ({self.ra.last_error}); "
                               f"{self.ra.counters['bad']} so far")
        except BadMessage as exc:
            self._bad(exc.reason)
        except Exception as exc:                            # noqa: BLE001 - never escape
            self._bad(type(exc).__name__, f"{type(exc).__name__}: {exc}")

    def _text(self, data):
        """A text packet: a chunk for the text receiver; a whole message goes out on `text`."""
        self.counters["text_packets"] += 1
        try:
            msg = self.text.push(unpack_chunk(data, self.fmt))
        except PacketError as exc:
            self.counters["text_bad"] += 1
            self._log.warn("text", f"dropped an invalid text packet ({exc})")
            return
        if msg is None:
            return
        kind = KIND_NAMES[msg.kind]
        if msg.kind in (CALLSIGN, END_OF_OVER):
            self.last_callsign = msg.text
        self.counters["end_of_over"] += msg.kind == END_OF_OVER
        self.heard.append((self._frames, kind, msg.text))
        del self.heard[:-64]
        self.message_port_pub(TEXT, make_pdu(msg.text.encode("utf-8"),
                                             {"text": msg.text, "kind": kind, "frame": self._frames}))

    def handle_system(self, msg):
        """Upstream finished: wait for eos (grace period), then flush (see the module doc)."""
        try:
            if pmt.is_pair(msg) and pmt.eq(pmt.car(msg), DONE):
                if self._upstream_done_at is None:
                    self._upstream_done_at = time.monotonic()
            else:
                self.gateway.system_handler(msg)
        except Exception as exc:                            # noqa: BLE001
            self._bad("system", f"system message: {exc}")

    def _bad(self, kind, text=None):
        self.counters["bad_messages"] += 1
        self._log.warn(kind, f"dropped a message: {text or kind}")

    def _now(self):
        return time.monotonic() if self.clocked else None

    def _take(self, frames):
        if self.stage_observers:
            self.stage_observers.notify(StageEvent("reassembly", 0.0, {"frames": frames}))
        for f in frames:
            self._tokens.append(f.tokens)
            self._states.append(f.states)
            self.loss.update(f.received)
            if self.loss.due():
                self.message_port_pub(FEEDBACK, stats_to_pmt(self.loss.report()))
                self.counters["feedback_msgs"] += 1
            self._frames += 1
            if self._frames % self.stats_interval == 0:
                self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))

    # ----------------------------------------------------------------- work
    def work(self, input_items, output_items):
        if self.clocked and not self._eos:
            self._take(self.ra.tick(time.monotonic()))
        if len(self._tokens) <= self.hold_last and not self._eos and self._upstream_done_at is not None:
            waited = time.monotonic() - self._upstream_done_at
            if self.nmsgs(PDUS) == 0 and waited >= self.eos_grace_s:
                self._eos = True
                self._take(self.ra.flush())
        n = min(len(self._tokens) - (self.hold_last and not self._eos), len(output_items[0]))
        if n > 0:
            output_items[0][:n] = self._tokens[:n]
            output_items[1][:n] = self._states[:n]
            del self._tokens[:n], self._states[:n]
            if self._eos and not self._tokens:          # in-band end of stream for token_recovery
                self.add_item_tag(0, self.nitems_written(0) + n - 1, EOS_TAG, pmt.PMT_T)
            return n
        return -1 if self._eos and not self._tokens else 0

    def start(self):
        """A new run of the flowgraph (also after stop/wait): forget the previous run's end of
        stream, so packets are taken again. The reassembler keeps its place: a sender that goes
        on counting frames goes on where it stopped, a restarted one is resynced."""
        self._eos = False
        self._upstream_done_at = None
        return True

    def stop(self):
        publish_final_stats(self, STATS)
        return True

    def get_stats(self):
        """Reassembler counters (packets, bad_*, late, duplicates, frames_lost, ...), loss."""
        c = dict(self.ra.counters)
        c.update(self.counters)
        c["loss_rate"] = self.loss.estimate if self.loss.estimate is not None else 0.0
        c["pending_frames"] = len(self._tokens)
        c.update(self.text.counters)
        c["last_callsign"] = self.last_callsign
        return c
