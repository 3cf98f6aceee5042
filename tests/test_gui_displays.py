"""The displays of examples/sim_erasure_loopback_gui.grc, headless: Stats to Stream turns the
loss reports and the per-packet allocation into streams, LargeSC RX's `states` output gives the
per-frame codebook map, and the Python grcc generates for the QT example compiles and imports.
(No display here: the QT flowgraph itself is not run.)"""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pmt
import pytest
from flowgraph_util import run  # noqa: E402
from gnuradio import blocks, gr

from gnuradio.largesc.core.link import frames
from gnuradio.largesc.gr_support.pdu import DONE, FEEDBACK, PDUS, STATS, SYSTEM, make_pdu
from gnuradio.largesc.stats_to_stream import MAX_PENDING, QT_BATCH_VALUES, stats_to_stream

REPO = Path(__file__).resolve().parents[1]


def feed(block, msgs, port=STATS, window=1):
    """Run `block` with sinks on its outputs, post `msgs`, end it; returns the sinks' data."""
    tb = gr.top_block()
    sinks = [blocks.vector_sink_f(window) for _ in block.keys]
    for i, s in enumerate(sinks):
        tb.connect((block, i), s)
    tb.start()
    for m in msgs:
        block._post(port, m)
    block._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
    th = threading.Thread(target=tb.wait, daemon=True)
    th.start()
    th.join(30)
    assert not th.is_alive(), "stats_to_stream did not finish after done"
    return [np.array(s.data(), np.float32).reshape(-1, window) for s in sinks]


def test_one_item_per_message_with_held_values():
    s = stats_to_stream(keys=["loss_rate", "window_loss"], qt_batch=False)
    msgs = [pmt.to_pmt({"loss_rate": 0.1, "window_loss": 0.2, "frames": 12}),
            pmt.to_pmt({"loss_rate": 0.3}),                          # window_loss keeps 0.2
            pmt.to_pmt({"other": 1.0}),                              # none of the keys: dropped
            pmt.intern("junk"),                                      # not a dict: dropped
            pmt.to_pmt({"loss_rate": "high", "window_loss": 0.5}),   # a non-number keeps its value
            pmt.to_pmt({"loss_rate": float("nan")}),                 # only non-finite: dropped
            pmt.to_pmt({"loss_rate": True})]                         # a bool counts as 1
    a, b = feed(s, msgs)
    np.testing.assert_allclose(a[:, 0], [0.1, 0.3, 0.3, 1.0])
    np.testing.assert_allclose(b[:, 0], [0.2, 0.2, 0.5, 0.5])
    st = s.get_stats()
    assert (st["messages"], st["items"], st["ignored"], st["missing_values"]) == (7, 4, 3, 2)


def test_pdu_metadata_gives_the_allocation():
    s = stats_to_stream(keys=["n_send", "n_repeat"], qt_batch=False)
    msgs = [make_pdu(b"\x01", {"seq": i, "n_send": 4 + i % 5, "n_repeat": i % 4}) for i in range(10)]
    msgs.append(make_pdu(b"", {"eos": True, "n_frames": 10}))       # the eos mark: no allocation
    n, r = feed(s, msgs, port=PDUS)
    assert n[:, 0].tolist() == [4 + i % 5 for i in range(10)]
    assert r[:, 0].tolist() == [i % 4 for i in range(10)]
    assert s.get_stats()["ignored"] == 1


def test_qt_batches_and_history_vectors():
    s = stats_to_stream(keys=["loss_rate"])                          # qt_batch on (default)
    (a,) = feed(s, [pmt.to_pmt({"loss_rate": v}) for v in (0.1, 0.2)], port=FEEDBACK)
    np.testing.assert_allclose(a[:, 0], [0.1] * QT_BATCH_VALUES + [0.2] * QT_BATCH_VALUES)
    s = stats_to_stream(keys=["loss_rate", "window_loss"], window=4)
    a, b = feed(s, [pmt.to_pmt({"loss_rate": v, "window_loss": 2 * v}) for v in (0.1, 0.2, 0.3)],
                port=FEEDBACK, window=4)
    want = [[0, 0, 0, 0.1], [0, 0, 0.1, 0.2], [0, 0.1, 0.2, 0.3]]
    np.testing.assert_allclose(a, np.repeat(want, 2, axis=0), rtol=1e-6)  # each vector twice
    np.testing.assert_allclose(b, 2 * np.repeat(want, 2, axis=0), rtol=1e-6)


def test_pending_items_are_bounded():
    s = stats_to_stream(keys=["x"])
    for i in range(MAX_PENDING + 10):                                # handler calls, no sink running
        s.handle_msg(pmt.to_pmt({"x": float(i)}))
    st = s.get_stats()
    assert st["pending"] == MAX_PENDING and st["dropped_items"] == 10
    assert s._pending[0][0, 0] == 10.0                               # the oldest went


class _LateStats(gr.sync_block):
    """A stream sink that, like every LargeSC block, publishes its final stats from stop(),
    which GNU Radio calls after it has posted `done` downstream (here `delay_s` later still,
    as a loaded machine may); the adaptive controller sends its eos PDU the same way."""

    def __init__(self, value, delay_s=0.3):
        gr.sync_block.__init__(self, name="late_stats", in_sig=[np.float32], out_sig=None)
        self.value, self.delay_s = value, delay_s
        self.message_port_register_out(STATS)
        self.message_port_register_out(PDUS)

    def work(self, input_items, output_items):
        return len(input_items[0])

    def stop(self):
        time.sleep(self.delay_s)
        self.message_port_pub(STATS, pmt.to_pmt({"x": float(self.value)}))
        self.message_port_pub(PDUS, make_pdu(b"", {"eos": True, "n_frames": 1}))
        return True


def _late_graph(s, upstreams):
    """`s` -> a sink; upstream i fed 1 + 4000 i samples at 20 kHz (finishes 0.2 i s later)."""
    tb = gr.top_block()
    sink = blocks.vector_sink_f()
    tb.connect(s, sink)
    for i, up in enumerate(upstreams):
        tb.connect(blocks.vector_source_f([0.0] * (1 + 4000 * i), False), blocks.throttle(gr.sizeof_float, 20000), up)
    return tb, sink


def test_messages_from_upstream_stop_are_not_lost():
    """Issue 21.3: the final stats and the eos PDU come after `done`; both must reach the stream."""
    s = stats_to_stream(keys=["x"], qt_batch=False)
    up = _LateStats(42.0)
    tb, sink = _late_graph(s, [up])
    tb.msg_connect(up, "stats", s, "stats")
    run(tb, timeout=60)
    assert list(sink.data()) == [42.0]


def test_every_upstream_edge_is_waited_for():
    """Two upstream blocks that finish 0.2 s apart, each connected twice (upstream_edges=4):
    the values both publish from stop() and both eos PDUs (no key: ignored) are taken."""
    s = stats_to_stream(keys=["x"], qt_batch=False, upstream_edges=4, eos_grace_s=0.1)
    a, b = _LateStats(1.0, delay_s=0.05), _LateStats(2.0, delay_s=0.05)
    tb, sink = _late_graph(s, [a, b])
    for up in (a, b):
        tb.msg_connect(up, "stats", s, "stats")
        tb.msg_connect(up, "pdus", s, "pdus")
    run(tb, timeout=60)
    assert list(sink.data()) == [1.0, 2.0]
    assert s.get_stats()["ignored"] == 2


@pytest.mark.parametrize("kwargs,name", [
    ({"keys": "loss_rate"}, "keys"), ({"keys": []}, "keys"), ({"keys": ["a", "a"]}, "keys"),
    ({"keys": ["a", 1]}, "keys"), ({"keys": [""]}, "keys"), ({"keys": [str(i) for i in range(9)]}, "keys"),
    ({"keys": None}, "keys"), ({"window": 0}, "window"), ({"window": 1001}, "window"),
    ({"window": 2.5}, "window"), ({"qt_batch": "True"}, "qt_batch"), ({"stats_interval": 0}, "stats_interval"),
    ({"eos_grace_s": -1.0}, "eos_grace_s"), ({"upstream_edges": 0}, "upstream_edges"),
])
def test_bad_parameters_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=rf"^stats_to_stream: {name} must be"):
        stats_to_stream(**kwargs)


def test_loopback_feeds_every_display_and_ends_by_itself():
    """TX -> channel -> RX as in the GUI example, headless: loss reports, allocation per
    packet and RX's per-frame states reach their streams, and the flowgraph still ends."""
    from gnuradio.largesc.largesc_rx import largesc_rx
    from gnuradio.largesc.largesc_tx import largesc_tx
    from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel
    n_frames = 40
    rng = np.random.default_rng(1)
    x = (0.2 * rng.standard_normal(n_frames * frames.FRAME_SAMPLES)).astype(np.float32)
    tb = gr.top_block()
    src = blocks.vector_source_f(x.tolist(), False)
    tx = largesc_tx(profile="tiny", bandwidth_bps=1650, loss_rate=0.3, seed=2)
    ch = packet_erasure_channel("bernoulli", 0.3, seed=2)
    rx = largesc_rx(profile="tiny", d=1, d_max=2, recovery="repeat", seed=2, feedback_interval=4)
    loss = stats_to_stream(keys=["loss_rate", "window_loss"], qt_batch=False)
    alloc = stats_to_stream(keys=["n_send", "n_repeat"], window=8)
    audio, states = blocks.vector_sink_f(), blocks.vector_sink_b(8)
    loss_sinks = [blocks.vector_sink_f() for _ in range(2)]
    alloc_sinks = [blocks.vector_sink_f(8) for _ in range(2)]
    tb.connect(src, tx)
    tb.msg_connect(tx, "pdus", ch, "pdus")
    tb.msg_connect(ch, "pdus", rx, "pdus")
    tb.msg_connect(rx, "feedback", tx, "feedback")
    tb.msg_connect(rx, "feedback", loss, "feedback")
    tb.msg_connect(tx, "pdus", alloc, "pdus")
    tb.connect((rx, 0), audio)
    tb.connect((rx, 1), states)
    for i in range(2):
        tb.connect((loss, i), loss_sinks[i])
        tb.connect((alloc, i), alloc_sinks[i])
    run(tb)
    st = rx.get_stats()
    assert len(audio.data()) == n_frames * frames.FRAME_SAMPLES
    # loss: one item per report, the values RX reported
    n_reports = st["depacketizer"]["feedback_msgs"]
    assert n_reports >= n_frames // 4 - 1
    lr = np.array(loss_sinks[0].data())
    assert len(lr) == n_reports and ((lr >= 0) & (lr <= 1)).all() and lr.max() > 0
    # allocation: a history vector (twice) per packet; the eos PDU has none
    n = np.array(alloc_sinks[0].data()).reshape(-1, 8)
    r = np.array(alloc_sinks[1].data()).reshape(-1, 8)
    assert len(n) == 2 * n_frames and alloc.get_stats()["ignored"] == 1
    assert set(n[-1]) <= set(range(4, 9)) and set(r[-1]) <= set(range(0, 8))
    # per-frame map: 8 states per frame after recovery, as the recovery counted them
    sv = np.array(states.data(), np.uint8).reshape(-1, 8)
    assert sv.shape == (n_frames, 8)
    assert set(np.unique(sv)) <= {frames.STATE_ORIGINAL, frames.STATE_COPY, frames.STATE_NOT_SENT,
                                  frames.STATE_GENERATED, frames.STATE_FALLBACK}
    rec = st["recovery"]
    for state, name in frames.STATE_NAMES.items():
        assert int((sv == state).sum()) == rec.get(f"tokens_{name}", 0), name
    assert (sv == frames.STATE_GENERATED).any() and (sv == frames.STATE_ORIGINAL).any()


def test_gui_example_generates_python_that_imports(tmp_path):
    pytest.importorskip("PyQt5")
    gen = tmp_path / "gen"
    gen.mkdir()
    env = dict(os.environ, GRC_BLOCKS_PATH=str(REPO / "grc"), HOME=str(tmp_path / "home"))
    env.pop("DISPLAY", None)
    r = subprocess.run(["grcc", "-o", str(gen), str(REPO / "examples" / "sim_erasure_loopback_gui.grc")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    py = gen / "sim_erasure_loopback_gui.py"
    text = py.read_text()
    for needle in ("largesc.stats_to_stream(keys=['loss_rate', 'window_loss'], window=1",
                   "largesc.stats_to_stream(keys=['n_send', 'n_repeat'], window=256",
                   "qtgui.number_sink(", "qtgui.vector_sink_f(", "qtgui.time_raster_sink_b(",
                   "self.connect((self.rx, 1), (self.states_v2s, 0))",
                   "self.msg_connect((self.rx, 'feedback'), (self.loss_probe, 'feedback'))",
                   "self.msg_connect((self.tx, 'pdus'), (self.alloc_hist, 'pdus'))"):
        assert needle in text, needle
    # import it (no QApplication, no window): every module it names exists
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('g', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "print(m.sim_erasure_loopback_gui.__name__)")
    r = subprocess.run([sys.executable, "-c", code, str(py)], capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if k != "DISPLAY"})
    assert r.returncode == 0 and "sim_erasure_loopback_gui" in r.stdout, r.stdout + r.stderr
