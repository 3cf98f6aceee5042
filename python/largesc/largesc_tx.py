"""GNU Radio hier block: LargeSC transmitter (audio in -> packets out on `pdus`).

Chain: [rational resampler samp_rate -> 24 kHz] -> Mimi encoder -> frame pacer ->
adaptive controller (rate + in-band UEP + packetizer) -> `pdus`.

Message ports (docs/architecture.md): in `feedback` (dict `loss_rate`, e.g. from
largesc_rx's `feedback`), in `ctrl` (dict bandwidth_bps / loss_rate / dtx), in `text` (a
string or PDU for the text side channel), in `ptt` (bool; False ends the over), out `pdus`.
The controller sends an end-of-stream PDU (metadata `eos`, `n_frames`) when the flowgraph
stops; the erasure channel and largesc_rx pass it on and flush on it.

Stream boundary and flow control: audio and tokens are streams (GNU Radio's buffers give
backpressure); packets are messages, which have none. A file source is as fast as the encoder,
so in a file run the receiver (recovery model, decoder) can fall behind and the packets it has
not yet taken would pile up in its message queue. `pace_with(rx, max_lead_frames)` closes that
loop for runs where TX and RX share a process: the frame pacer between encoder and controller
lets frame n through only once RX has taken frame n - max_lead_frames out of its depacketizer,
so memory stays flat whatever the speed ratio. It never waits on a receiver that has nothing
pending and has made no progress for `stall_s` (all packets lost, or RX not running), so it
cannot deadlock. On live links (real-time sources) pacing is not needed and is off by default.
"""
import threading
import time

import numpy as np
from gnuradio import filter as gr_filter
from gnuradio import gr

from .core.link import frames
from .core.link.packet import EPOCH_MOD, MAX_FPP
from .core.link.packet_formats import DEFAULT_FORMAT
from .core.profiles import DEFAULT_PROFILE
from .gr_support import params as P
from .gr_support.block_params import check_codec_params
from .gr_support.latency import tx_latency_ms
from .gr_support.ports import CTRL_PORT, FEEDBACK_PORT, PDUS_PORT, PTT_PORT, TEXT_PORT
from .gr_support.rates import check_samp_rate, rational_ratio
from .gr_support.stage_timing import StageTimer

K = frames.NUM_CODEBOOKS
NAME = "largesc_tx"


class _frame_pacer(gr.sync_block):
    """Token + activity pass-through that keeps this TX at most `max_lead` frames ahead of RX.

    `progress()` of the paced receiver returns (frames taken out of its depacketizer,
    frames waiting in it). Not a public block: it lives inside largesc_tx.
    """

    def __init__(self):
        gr.sync_block.__init__(self, name="largesc_frame_pacer",
                               in_sig=[(np.int32, K), np.float32],
                               out_sig=[(np.int32, K), np.float32])
        self._source = None
        self.max_lead = 0
        self.stall_s = 1.0
        self.max_wait_s = 0.2             # longest single wait inside work() (tb.stop() stays prompt)
        self.waits = 0                    # work() calls that had to wait
        self.wait_s = 0.0
        self.max_lead_seen = 0            # largest (frames out - rx progress) seen
        self._last_progress = (-1, 0.0)

    def pace(self, source, max_lead, stall_s):
        self._source, self.max_lead, self.stall_s = source, int(max_lead), float(stall_s)

    def _allowed(self, n):
        src = self._source
        if src is None:
            return n
        done, pending = src()
        now = time.monotonic()
        if done != self._last_progress[0]:
            self._last_progress = (done, now)
        sent = self.nitems_written(0)
        self.max_lead_seen = max(self.max_lead_seen, sent - done)
        allowed = done + self.max_lead - sent
        if allowed > 0:
            return min(n, allowed)
        if pending == 0 and now - self._last_progress[1] >= self.stall_s:
            return n                      # receiver starved (nothing arrives): never deadlock
        return 0

    def work(self, input_items, output_items):
        n = len(output_items[0])
        m = self._allowed(n)
        if m == 0:
            t0 = time.monotonic()
            self.waits += 1
            while m == 0 and time.monotonic() - t0 < self.max_wait_s:
                time.sleep(0.005)
                m = self._allowed(n)
            self.wait_s += time.monotonic() - t0
            if m == 0:
                return 0
        output_items[0][:m] = input_items[0][:m]
        output_items[1][:m] = input_items[1][:m]
        return m


class largesc_tx(gr.hier_block2):
    """LargeSC transmitter: float audio at `samp_rate` in, one PDU per packet out on `pdus`.

    Args:
        samp_rate: input audio rate in Hz (8000, 16000, 24000, 44100, 48000, ...); anything but
            24000 goes through GNU Radio's rational resampler (filter.rational_resampler_fff).
        profile: model profile of the encoder (a name of core/profiles.py PROFILES) or local weights.
        bandwidth_bps: payload budget B in [550, 2062.5] bps (above 2062.5 is an error).
        d: redundancy (copy) distance in frames, 1..8; RX must use the same d.
        loss_rate: initial packet loss estimate p in [0, 1] (replaced by RX feedback if
            use_feedback; back to it when feedback stays silent for 125 frames).
        use_feedback: follow the loss rate reported on the `feedback` port.
        dtx: discontinuous transmission (quiet frames send fewer than 4 tokens).
        frames_per_packet: frames grouped per packet, 1..8 (needs d >= frames_per_packet).
        device: torch device of the encoder (cpu, cuda, cuda:N, auto).  num_threads: 1..64.
        mimi_weights: local Mimi safetensors file instead of the profile's ('' = profile).
        seed: -1 draws the packet epoch at random (sender restarts are detectable); 0..2**32-1
            fixes the epoch to seed % 4 so that the same seed gives the same packets.
        frame_by_frame: encode one frame per model call. The scheduler otherwise hands the
            encoder as many frames as are ready, and Mimi's streaming convolutions round
            differently for different chunk sizes (last-bit differences); one frame per call
            makes file runs bit-exact (same input and seed -> same bytes).
        packet_format: v1 (default, 24-bit header + CRC-8), compact (12-bit header, no CRC, for
            links that check frames: the GMSK PHY, UDP) or compact_crc; the compact formats need
            frames_per_packet 1. RX must use the same format (docs/packet-format.md).
        callsign: '' or the station's call sign (up to 16 of A-Z, 0-9, '/', '-'), sent at the
            start, every 10 s and at the end of the over (docs/text-channel.md).
        text_share: share of B in [0, 0.5] that text may take from speech frames (default 0.05).

    Every parameter is checked before anything is built (samp_rate 1000..384000 Hz with a
    resampling ratio <= 1000; the others as above and in mimi_encoder / adaptive_controller);
    a bad value raises ValueError naming it. The setters check the same ranges.
    """

    def __init__(self, samp_rate=24000, profile=DEFAULT_PROFILE, bandwidth_bps=1100.0, d=1, loss_rate=0.0,
                 use_feedback=True, dtx=False, frames_per_packet=1, device="cpu", num_threads=1,
                 mimi_weights="", seed=-1, frame_by_frame=False, packet_format=DEFAULT_FORMAT,
                 callsign="", text_share=0.05):
        from .adaptive_controller import (
            check_bandwidth,
            check_callsign_param,
            check_loss_rate,
            check_packet_format,
            check_text_share,
        )
        samp_rate = check_samp_rate(NAME, samp_rate)
        check_codec_params(NAME, profile, frames.SAMPLE_RATE, device, num_threads, mimi_weights, 1)
        check_bandwidth(NAME, bandwidth_bps)
        d = P.check_int(NAME, "d", d, 1, P.MAX_D, "frames")
        check_loss_rate(NAME, loss_rate)
        P.check_bool(NAME, "use_feedback", use_feedback)
        P.check_bool(NAME, "dtx", dtx)
        fpp = P.check_int(NAME, "frames_per_packet", frames_per_packet, 1, MAX_FPP)
        if fpp > d:
            P.fail(NAME, "frames_per_packet", f"<= d = {d}", frames_per_packet)
        check_packet_format(NAME, packet_format, fpp)
        seed = P.check_int(NAME, "seed", seed, -1, P.MAX_SEED, "-1: random epoch")
        frame_by_frame = P.check_bool(NAME, "frame_by_frame", frame_by_frame)
        check_callsign_param(NAME, callsign)
        check_text_share(NAME, text_share)
        gr.hier_block2.__init__(self, "largesc_tx", gr.io_signature(1, 1, gr.sizeof_float),
                                gr.io_signature(0, 0, 0))
        from .adaptive_controller import adaptive_controller
        from .mimi_encoder import mimi_encoder
        self.log = gr.logger("largesc.tx")       # hier_block2 has no .logger in GNU Radio 3.10.5
        self._lock = threading.Lock()
        self.samp_rate = int(samp_rate)
        interp, decim = rational_ratio(samp_rate)
        epoch = -1 if int(seed) < 0 else int(seed) % EPOCH_MOD
        self.seed = int(seed)

        self.encoder = mimi_encoder(profile=profile, samp_rate=frames.SAMPLE_RATE, device=device,
                                    num_threads=num_threads, mimi_weights=mimi_weights)
        if frame_by_frame:
            self.encoder.set_max_noutput_items(1)
        self.pacer = _frame_pacer()
        self.controller = adaptive_controller(bandwidth_bps=bandwidth_bps, d=d, loss_rate=loss_rate,
                                              use_feedback=use_feedback, dtx=dtx,
                                              frames_per_packet=frames_per_packet, epoch=epoch,
                                              packet_format=packet_format, callsign=callsign,
                                              text_share=text_share)
        self.timers = {"encode": StageTimer(), "controller": StageTimer()}
        self.encoder.stage_observers.add(self.timers["encode"])
        self.controller.stage_observers.add(self.timers["controller"])
        if interp == decim:
            self.resampler = None
            self.connect(self, self.encoder)
        else:
            self.resampler = gr_filter.rational_resampler_fff(interpolation=interp, decimation=decim,
                                                              taps=[], fractional_bw=0)
            self.connect(self, self.resampler, self.encoder)
        self.connect((self.encoder, 0), (self.pacer, 0), (self.controller, 0))
        self.connect((self.encoder, 1), (self.pacer, 1), (self.controller, 1))

        for port in (FEEDBACK_PORT, CTRL_PORT, TEXT_PORT, PTT_PORT):
            self.message_port_register_hier_in(port)
            self.msg_connect(self, port, self.controller, port)
        self.message_port_register_hier_out(PDUS_PORT)
        self.msg_connect(self.controller, PDUS_PORT, self, PDUS_PORT)

    # ------------------------------------------------------------ callbacks (GRC)
    def set_bandwidth(self, bandwidth_bps):
        """Payload budget B in [550, 2062.5] bps, from the next frame on."""
        from .adaptive_controller import check_bandwidth
        b = check_bandwidth(NAME, bandwidth_bps)
        with self._lock:
            self.controller.set_bandwidth(b)

    def set_loss_rate(self, loss_rate):
        """Loss estimate p in [0, 1] (overwritten by RX feedback when use_feedback)."""
        from .adaptive_controller import check_loss_rate
        p = check_loss_rate(NAME, loss_rate)
        with self._lock:
            self.controller.set_loss_rate(p)

    def set_dtx(self, dtx):
        """Discontinuous transmission on/off."""
        dtx = P.check_bool(NAME, "dtx", dtx)
        with self._lock:
            self.controller.set_dtx(dtx)

    def set_use_feedback(self, use_feedback):
        """Follow RX loss reports (True) or keep the configured loss rate (False)."""
        use_feedback = P.check_bool(NAME, "use_feedback", use_feedback)
        with self._lock:
            self.controller.use_feedback = use_feedback

    def get_bandwidth(self):
        return self.controller.ctl.bandwidth_bps

    def get_loss_rate(self):
        return self.controller.loss_rate

    # ------------------------------------------------------------ flow control
    def pace_with(self, rx, max_lead_frames=25, stall_s=1.0):
        """Keep this TX at most `max_lead_frames` ahead of largesc_rx `rx` (same process).

        Call before the flowgraph starts. max_lead_frames must exceed rx's d_max plus
        frames_per_packet, or pacing would wait for packets it holds back itself (the stall
        timeout would then release them, slowly). `rx=None` turns pacing off.
        """
        if rx is None:
            self.pacer.pace(None, 0, stall_s)
            return
        need = rx.d_max + self.controller.pkt.fpp + 1
        lead = P.check_int(NAME, "max_lead_frames", max_lead_frames, need, 10 ** 6,
                           f"frames; at least d_max + frames_per_packet + 1 = {need}")
        stall_s = P.check_float(NAME, "stall_s", stall_s, 0.0, P.MAX_GRACE_S, lo_open=True, what="s")
        self.pacer.pace(rx.progress, lead, stall_s)

    # ------------------------------------------------------------ counters
    def get_stats(self):
        """{'encoder', 'controller', 'pacer', 'compute'}: each block's counters, the pacer's
        waits, and the compute time of encode and controller + packetizer (per frame)."""
        p = self.pacer
        enc = self.encoder.get_stats()
        return {"encoder": enc, "controller": self.controller.get_stats(),
                "pacer": {"waits": p.waits, "wait_s": round(p.wait_s, 3),
                          "max_lead_frames": p.max_lead, "max_lead_seen": p.max_lead_seen},
                "compute": {k: t.as_dict(enc["frames"]) for k, t in self.timers.items()}}

    def algorithmic_latency_ms(self):
        """{stage: ms} of the delay the TX adds by design (not compute)."""
        out = {"resampler (in)": 0.0}
        if self.resampler is not None:
            taps = len(self.resampler.taps())
            out["resampler (in)"] = (taps - 1) / 2 / self.resampler.interpolation() / self.samp_rate * 1e3
        # the frame itself, plus the codec's encoder look-ahead (mini: one frame for WORLD analysis)
        out.update(tx_latency_ms(self.encoder.codec.encoder_delay_frames, self.controller.pkt.fpp))
        return out
