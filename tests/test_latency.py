"""Algorithmic latency from frame counts (no wall time) for d = 1: docs/latency.md's table.

tiny: the blocks' own algorithmic_latency_ms() (largesc_tx / largesc_rx, profile tiny, 24 kHz so
no resampler) summed as `gr-largesc run`'s summary sums them. kyutai: the same tables from the
Mimi codec's declared delays (no weights needed), printed beside it.
"""
import pytest

from gnuradio.largesc.core.codec.mimi import MimiCodec
from gnuradio.largesc.core.recovery.base import LATENCY
from gnuradio.largesc.gr_support.latency import (
    codec_shift_samples,
    hier_output_shift_s,
    latency_totals,
    output_shift_s,
    rx_latency_ms,
    tx_latency_ms,
)

D = 1


def table(encoder_delay, stream_delay, recovery, d_max=D, hold_last=False):
    return {**tx_latency_ms(encoder_delay), **rx_latency_ms(d_max, LATENCY[recovery], stream_delay,
                                                            encoder_delay, hold_last)}


@pytest.mark.parametrize("recovery,received,lost", [("moshi", 160.0, 240.0), ("repeat", 80.0, 160.0)])
def test_tiny_blocks_latency_for_d_1(recovery, received, lost, capsys):
    from gnuradio.largesc.largesc_rx import largesc_rx
    from gnuradio.largesc.largesc_tx import largesc_tx
    tx = largesc_tx(samp_rate=24000, profile="tiny", d=D)
    rx = largesc_rx(samp_rate=24000, profile="tiny", d=D, d_max=D, recovery=recovery, clocked=True)
    algo = {**tx.algorithmic_latency_ms(), **rx.algorithmic_latency_ms()}
    assert algo["frame buffering"] == 80.0 and algo["packetization"] == 0.0
    assert algo["redundancy wait (lost frames)"] == D * 80.0
    assert algo["hold last frame (file runs only)"] == 0.0          # clocked: a live link
    assert algo["decoder"] == 0.0 and algo["resampler (in)"] == algo["resampler (out)"] == 0.0
    assert latency_totals(algo, D) == (received, lost)
    kyutai = latency_totals(table(MimiCodec.encoder_delay_frames, MimiCodec.stream_delay_frames,
                                  recovery), D)
    with capsys.disabled():
        print(f"\nlatency d=1 recovery={recovery}: tiny {received}/{lost} ms, "
              f"kyutai {kyutai[0]}/{kyutai[1]} ms (received/lost frame)")
    assert kyutai == (received, lost)       # Mimi: no look-ahead beyond the frame, like tiny


def test_latency_adds_the_codec_look_ahead_and_d_max():
    """A codec with one frame of encoder and one of decoder look-ahead (as mini) adds 160 ms;
    each frame of d_max adds 80 ms to a lost frame only; the file-mode hold is no live delay."""
    base = latency_totals(table(0, 0, "moshi"), D)
    assert latency_totals(table(1, 2, "moshi"), D) == (base[0] + 160.0, base[1] + 160.0)
    assert latency_totals(table(0, 0, "moshi", d_max=D + 1), D + 1) == (base[0], base[1] + 80.0)
    assert latency_totals(table(0, 0, "moshi", hold_last=True), D) == base


class _Codec:
    def __init__(self, enc, stream, sub=None):
        self.encoder_delay_frames, self.stream_delay_frames = enc, stream
        if sub is not None:
            self.sub_frame_delay_samples = sub


def test_file_run_shift_comes_from_the_codec_and_the_resamplers():
    """A file run's output shift (gr_support/latency.py): the codec's lead-in frames (encoder and
    decoder look-ahead) and sub-frame delay, less the resamplers' group delays; no hold or wait."""
    assert codec_shift_samples(_Codec(1, 2)) == 2 * 1920                 # mini v1: no sub-frame declared
    assert codec_shift_samples(_Codec(0, 3, 600)) == 3 * 1920 + 600      # a v2 window of 3 frames
    assert codec_shift_samples(_Codec(0, 0, 0)) == 0
    assert output_shift_s(_Codec(0, 1, 240), None, 1.0, 1.5) == pytest.approx(0.08 + 0.01 - 0.0025)
    assert rx_latency_ms(1, 0, 1, 0, sub_frame_samples=240)["codec sub-frame (analysis, vocoder)"] == 10.0


def test_hier_blocks_shift_at_16_khz():
    """tiny at 16 kHz: no codec delay, so the shift is minus the two resamplers' group delays."""
    from gnuradio.largesc.largesc_rx import largesc_rx
    from gnuradio.largesc.largesc_tx import largesc_tx
    tx = largesc_tx(samp_rate=16000, profile="tiny", d=D)
    rx = largesc_rx(samp_rate=16000, profile="tiny", d=D, d_max=D, recovery="repeat")
    res = tx.algorithmic_latency_ms()["resampler (in)"] + rx.algorithmic_latency_ms()["resampler (out)"]
    assert res > 0 and hier_output_shift_s(tx, rx) == pytest.approx(-res / 1e3)
