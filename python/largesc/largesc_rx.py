"""GNU Radio hier block: LargeSC receiver (packets in on `pdus` -> audio out).

Chain: `pdus` -> depacketizer (reassembly, one frame per stream item, loss feedback) ->
token recovery (auto / zero / repeat / prefix / interp / latent / moshi / moshi-mmse) -> Mimi decoder (each frame
decodes its decodable prefix: the leading codebooks received or filled, from recovery's states)
-> [rational resampler 24 kHz -> samp_rate] -> audio.

Message ports (docs/architecture.md): in `pdus` (packets as PDUs, plus the sender's
end-of-stream PDU), out `feedback` (dict `loss_rate`, for largesc_tx's `feedback` port), out
`text` (one PDU per whole text message: UTF-8 bytes, metadata `text`, `kind`, `frame`; the last
heard call sign is `last_callsign` in the depacketizer's stats; docs/text-channel.md).
Stream outputs: 0 = audio; 1 = the per-codebook states of every frame after recovery (8 uint8
per frame, frames.STATE_*: original, copy, generated, fallback, not sent), for displays such as
a QT time raster; it may be left unconnected (a null sink inside takes it then).

Stream boundary: packets are messages up to the depacketizer and a stream of frames (8 int32
tokens + 8 uint8 states per item) after it, so everything behind the depacketizer has GNU
Radio's backpressure; the depacketizer keeps only the frames its output buffer cannot take yet
(bounded in a file run by largesc_tx.pace_with, and by the real-time source on a live link).
End of stream: the sender's eos PDU makes the depacketizer flush its d_max wait, emit the frames
still missing, tag the last frame `eos` (token recovery flushes the frame it holds back) and
finish, so a file run gives one output frame per input frame. In file mode (clocked False) with
a recovery that holds a frame back, the depacketizer holds the newest frame until the next one
is final (hold_last), which makes that tag certain at the cost of one frame of latency.
"""
import threading

from gnuradio import blocks, gr
from gnuradio import filter as gr_filter

from .core.link import frames
from .core.link.packet_formats import DEFAULT_FORMAT, FORMATS
from .core.profiles import DEFAULT_PROFILE
from .core.recovery.base import LATENCY
from .gr_support import params as P
from .gr_support.block_params import (
    check_codec_params,
    check_codec_window,
    check_deadline_ms,
    check_recovery_params,
    check_temperature,
    check_top_k,
)
from .gr_support.latency import overlap_frames, rx_latency_ms, sub_frame_delay_samples
from .gr_support.ports import FEEDBACK_PORT, PDUS_PORT, TEXT_PORT
from .gr_support.rates import check_samp_rate, rational_ratio
from .gr_support.stage_timing import StageTimer

K = frames.NUM_CODEBOOKS
RECOVERY_LATENCY = LATENCY            # frames each strategy holds (core/recovery/base.py)
NAME = "largesc_rx"


class largesc_rx(gr.hier_block2):
    """LargeSC receiver: PDUs on `pdus` in, float audio at `samp_rate` out (output 0), the
    per-codebook states of each decoded frame out on output 1 (uint8 x 8; may stay unconnected).

    Args:
        samp_rate: output audio rate in Hz; anything but 24000 goes through GNU Radio's rational
            resampler (filter.rational_resampler_fff).
        profile: model profile of the Mimi decoder and of the `moshi` recovery LM.
        d: redundancy (copy) distance the sender uses.  d_max: frames to wait for copies (>= d).
        recovery: auto | zero | repeat | prefix | interp | latent | moshi | moshi-mmse (interp, latent and the LM
            strategies hold one frame).
        num_codebooks: codebooks decoded (a prefix, 1..8).
        clocked: declare frames lost by wall-clock deadline (live links); False for file runs.
        timeout_ms: deadline in clocked mode, 0..60000 ms (0: (d_max + 1) x 80 ms).
        device: torch device (cpu, cuda, auto).  num_threads: torch threads per model block.
        seed: sampling seed of the recovery (same seed, same input -> same output).
        temperature, top_k: `moshi` sampling.  lora: LoRA adapter for `moshi` ('' = none).
        fill_not_sent: also generate the codebooks the sender did not send (False: the decoder
            decodes each frame's received prefix; `prefix` recovery never fills them).
        deadline_ms: a `moshi` step slower than this falls back to repeat (0: none).
        mimi_weights: local Mimi safetensors file instead of the profile's ('' = profile).
        codec_window: the mini v2 decoder's look-ahead, 0..3 frames (-1: the codec's default).
        overlap: hand the decoder each frame's provisional successor with it, so that a recovery
            hold of one frame and the decoder's look-ahead are one wait (mini v2; docs/latency.md);
            False: the sequential order (hold, then look-ahead). Used only by strategies that hold.
        feedback_interval: frames between loss reports on `feedback`.
        lm_profile: profile of the `moshi` recovery LM if not `profile` ('' = same).
        frame_by_frame: decode one frame per model call (bit-exact file runs; see largesc_tx).
        packet_format: v1 | compact | compact_crc, as the sender's (docs/packet-format.md).

    Ranges (checked before anything is built; a bad value raises ValueError naming it):
    samp_rate 1000..384000 Hz (resampling ratio <= 1000), d 1..8, d_max d..64,
    num_codebooks 1..8, packet_format v1 | compact | compact_crc, timeout_ms 0..60000, num_threads 1..64, seed 0..2**32-1,
    temperature 0..10, top_k 0..2048, deadline_ms 0..10000, feedback_interval 1..10**4,
    lm_profile '' | tiny | kyutai-arch | kyutai | mini,
    mimi_weights / lora: '' or an existing safetensors file (lora: or folder).
    """

    def __init__(self, samp_rate=24000, profile=DEFAULT_PROFILE, d=1, d_max=1, recovery="auto",
                 num_codebooks=8, clocked=False, timeout_ms=0.0, device="cpu", num_threads=1,
                 seed=0, temperature=0.8, top_k=250, lora="", fill_not_sent=True, deadline_ms=0.0,
                 mimi_weights="", feedback_interval=12, lm_profile="", frame_by_frame=False,
                 packet_format=DEFAULT_FORMAT, codec_window=-1, overlap=True):
        from .core.profiles import LM_PROFILES, resolve_recovery
        from .depacketizer import MAX_FEEDBACK_FRAMES, MAX_TIMEOUT_MS
        samp_rate = check_samp_rate(NAME, samp_rate)
        recovery = resolve_recovery(profile, recovery)
        check_codec_params(NAME, profile, frames.SAMPLE_RATE, device, num_threads, mimi_weights, 1)
        codec_window = check_codec_window(NAME, profile, mimi_weights, codec_window)
        d = P.check_int(NAME, "d", d, 1, P.MAX_D, "frames")
        d_max = P.check_int(NAME, "d_max", d_max, 1, P.MAX_D_MAX, "frames")
        if d_max < d:
            P.fail(NAME, "d_max", f">= d = {d}", d_max)
        P.check_choice(NAME, "recovery", recovery, tuple(RECOVERY_LATENCY))
        P.check_int(NAME, "num_codebooks", num_codebooks, 1, K)
        clocked = P.check_bool(NAME, "clocked", clocked)
        P.check_float(NAME, "timeout_ms", timeout_ms, 0.0, MAX_TIMEOUT_MS, what="ms; 0: (d_max + 1) x 80 ms")
        if lm_profile != "":
            P.check_choice(NAME, "lm_profile", lm_profile, ("",) + LM_PROFILES)
        elif str(recovery).startswith("moshi") and profile not in LM_PROFILES:
            P.fail(NAME, "lm_profile", f"one of {', '.join(LM_PROFILES)} for recovery 'moshi' "
                   f"with profile {profile!r} (that profile has no LM)", lm_profile)
        check_recovery_params(NAME, lm_profile or profile, recovery, temperature, top_k, seed, device,
                              num_threads, lora, fill_not_sent, deadline_ms, "", "", False,
                              profile_name="lm_profile" if lm_profile else "profile",
                              strategy_name="recovery")
        P.check_int(NAME, "feedback_interval", feedback_interval, 1, MAX_FEEDBACK_FRAMES, "frames")
        frame_by_frame = P.check_bool(NAME, "frame_by_frame", frame_by_frame)
        P.check_choice(NAME, "packet_format", packet_format, FORMATS)
        overlap = P.check_bool(NAME, "overlap", overlap)
        gr.hier_block2.__init__(self, "largesc_rx", gr.io_signature(0, 0, 0),
                                gr.io_signature.makev(2, 2, [gr.sizeof_float, K]))
        from .depacketizer import depacketizer
        from .mimi_decoder import mimi_decoder
        from .token_recovery import token_recovery
        self.log = gr.logger("largesc.rx")       # hier_block2 has no .logger in GNU Radio 3.10.5
        self._lock = threading.Lock()
        self.samp_rate = int(samp_rate)
        interp, decim = rational_ratio(samp_rate)      # samp_rate -> 24 kHz; back is decim/interp
        self.d, self.d_max, self.recovery_name = int(d), int(d_max), recovery
        self.clocked = bool(clocked)
        self.hold_last = not self.clocked and RECOVERY_LATENCY[recovery] > 0

        self.depacketizer = depacketizer(d=d, d_max=d_max, clocked=clocked, timeout_ms=timeout_ms,
                                         feedback_interval=feedback_interval,
                                         hold_last=self.hold_last, packet_format=packet_format)
        # use_states: each frame decodes its decodable prefix (known or filled codebooks), so
        # codebooks left unfilled (`prefix` recovery, fill_not_sent False) never reach the model
        # as token 0: the same decode as the evaluation (evaluation/largesc_system.py)
        # overlap: only where the strategy holds a frame back (else there is no wait to share)
        self.overlap = overlap and RECOVERY_LATENCY[recovery] > 0
        self.decoder = mimi_decoder(profile=profile, num_codebooks=num_codebooks,
                                    samp_rate=frames.SAMPLE_RATE, device=device,
                                    num_threads=num_threads, mimi_weights=mimi_weights,
                                    use_states=True, codec_window=codec_window, overlap=self.overlap)
        self.overlap_frames = overlap_frames(self.decoder.codec, RECOVERY_LATENCY[recovery], self.overlap)
        # latent-space recovery (interp, moshi-mmse) works in the decoder's own codebooks
        self.recovery = token_recovery(profile=lm_profile or profile, strategy=recovery, temperature=temperature,
                                       top_k=top_k, seed=seed, device=device, num_threads=num_threads,
                                       lora=lora, fill_not_sent=fill_not_sent, deadline_ms=deadline_ms,
                                       codec=self.decoder.codec, lookahead=self.overlap)
        if frame_by_frame:
            self.decoder.set_max_noutput_items(frames.FRAME_SAMPLES)
        self.timers = {"decode": StageTimer()}
        self.decoder.stage_observers.add(self.timers["decode"])
        self.states_sink = blocks.null_sink(K)          # uint8 x 8 per frame
        self.connect((self.depacketizer, 0), (self.recovery, 0), (self.decoder, 0))
        self.connect((self.depacketizer, 1), (self.recovery, 1), (self.states_sink, 0))
        self.connect((self.recovery, 1), (self.decoder, 1))     # per-frame decodable prefix
        if self.overlap:                                        # the provisional next frame
            self.connect((self.recovery, 2), (self.decoder, 2))
            self.connect((self.recovery, 3), (self.decoder, 3))
        self.connect((self.recovery, 1), (self, 1))     # optional outside: the null sink stays
        if interp == decim:
            self.resampler = None
            self.connect(self.decoder, self)
        else:
            self.resampler = gr_filter.rational_resampler_fff(interpolation=decim, decimation=interp,
                                                              taps=[], fractional_bw=0)
            self.connect(self.decoder, self.resampler, self)

        self.message_port_register_hier_in(PDUS_PORT)
        self.msg_connect(self, PDUS_PORT, self.depacketizer, PDUS_PORT)
        self.message_port_register_hier_out(FEEDBACK_PORT)
        self.msg_connect(self.depacketizer, FEEDBACK_PORT, self, FEEDBACK_PORT)
        self.message_port_register_hier_out(TEXT_PORT)
        self.msg_connect(self.depacketizer, TEXT_PORT, self, TEXT_PORT)
        self._progress = (0, 0)

    # ------------------------------------------------------------ callbacks (GRC)
    def set_num_codebooks(self, num_codebooks):
        """Decode only the first k codebooks (1..8) from the next frame on."""
        k = P.check_int(NAME, "num_codebooks", num_codebooks, 1, K)
        with self._lock:
            self.decoder.set_num_codebooks(k)

    def set_temperature(self, temperature):
        """`moshi` sampling temperature in [0, 10] (0: greedy); no effect on the baselines."""
        t = check_temperature(NAME, temperature)
        with self._lock:
            self.recovery.set_temperature(t)

    def set_top_k(self, top_k):
        """`moshi` top-k sampling, 0..2048 (0: no cut); no effect on the baselines."""
        k = check_top_k(NAME, top_k)
        with self._lock:
            self.recovery.set_top_k(k)

    def set_fill_not_sent(self, fill_not_sent):
        """Generate the codebooks the sender did not send (True) or leave them out (False)."""
        fill = P.check_bool(NAME, "fill_not_sent", fill_not_sent)
        with self._lock:
            self.recovery.set_fill_not_sent(fill)

    def set_deadline_ms(self, deadline_ms):
        """`moshi` step deadline in 0..10000 ms (0: none); slower steps fall back to repeat."""
        ms = check_deadline_ms(NAME, deadline_ms)
        with self._lock:
            self.recovery.set_deadline_ms(ms)

    # ------------------------------------------------------------ flow control
    def progress(self):
        """(frames taken out of the depacketizer so far, frames waiting in it); any thread."""
        try:
            s = self.depacketizer.get_stats()
            self._progress = (int(s["frames_out"]) - int(s["pending_frames"]), int(s["pending_frames"]))
        except Exception:                                   # noqa: BLE001 - racing the handler
            pass
        return self._progress

    # ------------------------------------------------------------ counters
    def get_stats(self):
        """{'depacketizer', 'recovery', 'decoder', 'compute'}: each block's counters and the
        compute time of recovery and decode (per frame)."""
        rec = self.recovery.get_stats()
        dec = self.decoder.get_stats()
        n = rec.get("frames_in", 0)
        compute = {"recovery": {"calls": n, "total_ms": round(rec.get("push_ms_mean", 0.0) * n, 3),
                                "ms_per_frame": rec.get("push_ms_mean", 0.0),
                                "max_call_ms": rec.get("push_ms_max", 0.0)},
                   "decode": self.timers["decode"].as_dict(dec["frames"])}
        return {"depacketizer": self.depacketizer.get_stats(), "recovery": rec, "decoder": dec,
                "compute": compute}

    def algorithmic_latency_ms(self):
        """{stage: ms} of the delay the RX adds by design (not compute). The redundancy wait
        applies to lost frames only (a received frame is released at once)."""
        codec = self.decoder.codec
        out = rx_latency_ms(self.d_max, RECOVERY_LATENCY[self.recovery_name], codec.stream_delay_frames,
                            codec.encoder_delay_frames, self.hold_last, sub_frame_delay_samples(codec),
                            self.overlap_frames)
        out["resampler (out)"] = 0.0
        if self.resampler is not None:
            taps = len(self.resampler.taps())
            out["resampler (out)"] = (taps - 1) / 2 / self.resampler.interpolation() \
                / frames.SAMPLE_RATE * 1e3
        return out
