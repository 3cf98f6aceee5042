"""Algorithmic latency of the hier blocks from frame counts (no wall time; docs/latency.md).

largesc_tx / largesc_rx ``algorithmic_latency_ms()`` add their resamplers' group delays to these
tables; `gr-largesc run`'s summary sums them (app/run_summary.py ``latency_totals``). The codec's
look-ahead comes from ``codec.encoder_delay_frames`` / ``codec.stream_delay_frames`` and its delay
below one frame (analysis window, vocoder, the codec's own resamplers) from
``codec.sub_frame_delay_samples``; the recovery's hold from core.recovery.base.LATENCY, so a new
codec or recovery brings its own.

Two different things are derived here:
- the *latency* tables: how long a frame takes through a live link (``tx_latency_ms``,
  ``rx_latency_ms``, ``latency_totals``);
- the *output shift* of a file run (``output_shift_s``): how far the output samples lag the
  input samples. Waits that only delay a frame in time (the copy wait d / d_max, the file-mode
  hold, the recovery hold) do not move samples, because every frame keeps its index from the
  encoder to the decoder (the depacketizer emits each index in order, token recovery's output
  k is its input k). What moves samples is what the codec blocks emit before the first real
  frame (the encoder's and the decoder's look-ahead, as lead-in frames) and the codec's
  sub-frame delay. GNU Radio's rational resampler works the other way in a stream: it emits its
  first sample once its history is full, centred half a filter into the input, so its output
  samples run *ahead* by its group delay (and the last group delay of input never comes out).
  On a live link the group delay is latency all the same (the table counts it); in the sample
  stream it is subtracted. `gr-largesc run` removes the net shift and feeds enough silence after
  the input for its end to come out (app/loopback.py).
Overlap (largesc_rx `overlap`, the default): when the recovery holds frame t for frame t+1 and
the decoder looks ahead to frame t+1, they wait for the same packet. Token recovery then hands
the decoder frame t+1 as it has it (provisional) with final frame t, and a codec that supports
it (``codec.supports_overlap``: mini v2) decodes at once: the received-frame latency has
max(hold, decoder look-ahead), not their sum (``overlap_frames`` = min of the two is taken off,
as its own row), and a lost frame's copy wait runs within the same wait (its extra is
max(0, d_max - max(hold, look-ahead)) frames). The decoder then emits ``overlap_frames`` fewer
lead-in frames, so the output shift is smaller by as much.
Plain Python: no GNU Radio import.
"""
from ..core.link import frames

FRAME_MS = frames.FRAME_SECONDS * 1e3       # 80 ms

TX_STAGES = ("frame buffering", "packetization")
OVERLAP_STAGE = "overlap (look-ahead within the hold)"
RX_STAGES = ("redundancy wait (lost frames)", "hold last frame (file runs only)", "recovery", "decoder",
             OVERLAP_STAGE, "codec sub-frame (analysis, vocoder)")


def sub_frame_delay_samples(codec) -> int:
    """The codec's declared delay below one frame, in 24 kHz samples (0 if it declares none)."""
    return int(getattr(codec, "sub_frame_delay_samples", 0) or 0)


def decoder_delay_frames(codec) -> int:
    """Frames of decoder look-ahead: the codec's streaming delay minus the encoder's share."""
    return int(codec.stream_delay_frames) - int(codec.encoder_delay_frames)


def overlap_frames(codec, recovery_frames: int, overlap: bool = True) -> int:
    """Frames by which the recovery hold and the decoder's look-ahead overlap (0 when overlap is
    off, the codec cannot decode with a provisional frame, or either wait is 0)."""
    if not overlap or not getattr(codec, "supports_overlap", False):
        return 0
    return min(int(recovery_frames), decoder_delay_frames(codec))


def tx_latency_ms(encoder_delay_frames: int, frames_per_packet: int = 1) -> dict:
    """{stage: ms}: the frame itself plus the encoder's look-ahead; grouping F frames per packet."""
    return {"frame buffering": (1 + int(encoder_delay_frames)) * FRAME_MS,
            "packetization": (int(frames_per_packet) - 1) * FRAME_MS}


def rx_latency_ms(d_max: int, recovery_frames: int, stream_delay_frames: int,
                  encoder_delay_frames: int, hold_last: bool = False, sub_frame_samples: int = 0,
                  overlap: int = 0) -> dict:
    """{stage: ms}: copy wait (lost frames only), file-mode hold, recovery hold, decoder look-ahead
    (the codec's streaming delay minus the encoder's share, which the TX counts), the overlap of
    the two (`overlap` frames, negative; see the module doc) and the codec's delay below one frame
    (`sub_frame_samples` at 24 kHz: analysis window, vocoder, resamplers)."""
    dec = int(stream_delay_frames) - int(encoder_delay_frames)
    wait = int(d_max) if not overlap else max(0, int(d_max) - max(int(recovery_frames), dec))
    return {"redundancy wait (lost frames)": wait * FRAME_MS,
            "hold last frame (file runs only)": FRAME_MS if hold_last else 0.0,
            "recovery": int(recovery_frames) * FRAME_MS,
            "decoder": dec * FRAME_MS,
            OVERLAP_STAGE: -int(overlap) * FRAME_MS,
            "codec sub-frame (analysis, vocoder)": int(sub_frame_samples) / frames.SAMPLE_RATE * 1e3}


def latency_totals(algo: dict, d_max: int | None = None) -> tuple:
    """(received frame, lost frame) totals in ms of a {stage: ms} table on a live link: the
    file-mode hold is not there, the copy wait (its row; `d_max` frames for a table without
    one) applies to lost frames only."""
    received = sum(v for k, v in algo.items() if not k.startswith(("redundancy", "hold")))
    wait = algo.get("redundancy wait (lost frames)")
    return received, received + (wait if wait is not None else int(d_max or 0) * FRAME_MS)


def codec_shift_samples(encoder_codec, decoder_codec=None, overlap: int = 0) -> int:
    """24 kHz samples by which the decoder blocks' audio lags the encoder block's input: the
    encoder's lead-in frames (its look-ahead), the decoder's (its look-ahead, less `overlap`
    frames) and the codec's sub-frame delay. `decoder_codec` defaults to `encoder_codec`."""
    dec = encoder_codec if decoder_codec is None else decoder_codec
    lead_frames = int(encoder_codec.encoder_delay_frames) + decoder_delay_frames(dec) - int(overlap)
    return lead_frames * frames.FRAME_SAMPLES + sub_frame_delay_samples(dec)


def output_shift_s(encoder_codec, decoder_codec=None, resampler_in_ms: float = 0.0,
                   resampler_out_ms: float = 0.0, overlap: int = 0) -> float:
    """Seconds by which a file run's output samples lag its input samples (see the module doc):
    the codec's shift minus the group delays of the TX and RX resamplers (GNU Radio's rational
    resampler advances the stream by its group delay). Holds and waits are not in it."""
    codec_s = codec_shift_samples(encoder_codec, decoder_codec, overlap) / frames.SAMPLE_RATE
    return codec_s - (float(resampler_in_ms) + float(resampler_out_ms)) / 1e3


def hier_output_shift_s(tx, rx) -> float:
    """``output_shift_s`` of a largesc_tx -> largesc_rx pair, read from the blocks' codecs and
    resamplers (their ``algorithmic_latency_ms()`` tables give the resamplers' group delays)."""
    return output_shift_s(tx.encoder.codec, rx.decoder.codec,
                          tx.algorithmic_latency_ms().get("resampler (in)", 0.0),
                          rx.algorithmic_latency_ms().get("resampler (out)", 0.0),
                          getattr(rx, "overlap_frames", 0))
