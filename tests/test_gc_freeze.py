"""The codec blocks keep full garbage collections from pausing a live flowgraph
(gr_support/gc_freeze.py): what is alive at start is frozen while a block runs, and thawed when
the last block stops, through a real flowgraph of the default profile and when blocks start and
stop out of order."""
import gc

import numpy as np
import pytest
from gnuradio import blocks, gr

from gnuradio.largesc.core.profiles import DEFAULT_PROFILE
from gnuradio.largesc.gr_support import gc_freeze
from gnuradio.largesc.mimi_decoder import mimi_decoder
from gnuradio.largesc.mimi_encoder import mimi_encoder


@pytest.fixture(autouse=True)
def no_block_running():
    """Each test starts with no started codec block (one left running by another test in the same
    process is set aside and put back)."""
    before = gc_freeze._running
    gc_freeze._running = 0
    gc.unfreeze()
    yield
    gc_freeze._running = before
    if before:
        gc.freeze()


def test_running_blocks_freeze_the_heap_and_the_last_to_stop_thaws_it():
    assert gc_freeze.running() == 0 and gc.get_freeze_count() == 0
    enc, dec = mimi_encoder(profile="tiny"), mimi_decoder(profile="tiny")
    enc.start()
    assert gc_freeze.running() == 1 and gc.get_freeze_count() > 0
    dec.start()
    dec.start()                                   # a second start of the same block counts once
    assert gc_freeze.running() == 2
    enc.stop()
    assert gc_freeze.running() == 1 and gc.get_freeze_count() > 0
    dec.stop()
    dec.stop()                                    # stopping twice does not thaw someone else's freeze
    assert gc_freeze.running() == 0 and gc.get_freeze_count() == 0


def test_thaw_without_a_freeze_is_harmless():
    gc_freeze.thaw_heap()
    assert gc_freeze.running() == 0 and gc.get_freeze_count() == 0


class _FreezeProbe(gr.sync_block):
    """Pass-through that records the collector's frozen-object count in each work call."""

    def __init__(self):
        gr.sync_block.__init__(self, "freeze_probe", [np.float32], [np.float32])
        self.seen = []

    def work(self, input_items, output_items):
        self.seen.append(gc.get_freeze_count())
        output_items[0][:] = input_items[0]
        return len(output_items[0])


def test_a_flowgraph_run_freezes_while_running_and_leaves_nothing_frozen():
    """Default profile, through the blocks: frozen while the encoder streams, thawed after."""
    tb = gr.top_block()
    t = np.arange(1920 * 6) / 24000.0
    src = blocks.vector_source_f((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32).tolist(), False)
    enc = mimi_encoder(profile=DEFAULT_PROFILE)
    probe = _FreezeProbe()
    tokens = blocks.vector_sink_i(8)
    tb.connect(src, probe, enc, tokens)
    tb.connect((enc, 1), blocks.null_sink(gr.sizeof_float))
    tb.start()
    tb.wait()
    assert len(tokens.data()) > 0                     # it ran
    assert probe.seen and min(probe.seen) > 0, probe.seen
    assert gc_freeze.running() == 0 and gc.get_freeze_count() == 0
