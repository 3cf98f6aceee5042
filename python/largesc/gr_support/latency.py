"""Algorithmic latency of the hier blocks from frame counts (no wall time; docs/latency.md).

largesc_tx / largesc_rx ``algorithmic_latency_ms()`` add their resamplers' group delays to these
tables; `gr-largesc run`'s summary sums them (app/run_summary.py ``latency_totals``). The codec's
look-ahead comes from ``codec.encoder_delay_frames`` / ``codec.stream_delay_frames`` and the
recovery's hold from core.recovery.base.LATENCY, so a new codec or recovery brings its own.
Plain Python: no GNU Radio import.
"""
from ..core.link import frames

FRAME_MS = frames.FRAME_SECONDS * 1e3       # 80 ms

TX_STAGES = ("frame buffering", "packetization")
RX_STAGES = ("redundancy wait (lost frames)", "hold last frame (file runs only)", "recovery", "decoder")


def tx_latency_ms(encoder_delay_frames: int, frames_per_packet: int = 1) -> dict:
    """{stage: ms}: the frame itself plus the encoder's look-ahead; grouping F frames per packet."""
    return {"frame buffering": (1 + int(encoder_delay_frames)) * FRAME_MS,
            "packetization": (int(frames_per_packet) - 1) * FRAME_MS}


def rx_latency_ms(d_max: int, recovery_frames: int, stream_delay_frames: int,
                  encoder_delay_frames: int, hold_last: bool = False) -> dict:
    """{stage: ms}: copy wait (lost frames only), file-mode hold, recovery hold, decoder look-ahead
    (the codec's streaming delay minus the encoder's share, which the TX counts)."""
    return {"redundancy wait (lost frames)": int(d_max) * FRAME_MS,
            "hold last frame (file runs only)": FRAME_MS if hold_last else 0.0,
            "recovery": int(recovery_frames) * FRAME_MS,
            "decoder": (int(stream_delay_frames) - int(encoder_delay_frames)) * FRAME_MS}


def latency_totals(algo: dict, d_max: int) -> tuple:
    """(received frame, lost frame) totals in ms of a {stage: ms} table on a live link: the
    file-mode hold is not there, the copy wait applies to lost frames only."""
    received = sum(v for k, v in algo.items() if not k.startswith(("redundancy", "hold")))
    return received, received + int(d_max) * FRAME_MS
