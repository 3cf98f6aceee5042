"""Short fixed-budget run of scripts/fuzz_rx_chain.py (CI): the whole largesc_rx (tiny) in a GNU
Radio top block fed with hypothesis-generated PDUs. The long run's count is in
docs/reliability.md. Also checks that the harness does catch a block that raises or a handler
that swallows an internal exception (it must not pass vacuously)."""
import importlib.util
import random
import sys
from pathlib import Path

import pmt
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_rx_chain.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_rx_chain", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from gnuradio import gr
    level = gr.logging().default_level()
    yield mod
    gr.logging().set_default_level(level)             # watch_gr_log() lowers it to errors


def test_fuzz_rx_chain_short_run(fuzz, capsys):
    assert fuzz.main(["--examples", "16", "--seed", "1", "--batch", "16", "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("examples: "))
    assert "failures: 0" in line and int(line.split()[1]) >= 16


def _stream(fuzz, n=8):
    pkts, _ = fuzz.sender_stream(random.Random(3), n, 1, 1, 2, fuzz.P.SEQ_MOD - 3)  # wraps
    return [fuzz.pdu(p) for p in pkts] + [fuzz.eos_msg(pmt.from_long(n))]


def test_clean_stream_and_garbage_only(fuzz):
    cfg = {"d": 1, "d_max": 2, "recovery": "repeat"}
    fuzz.watch_gr_log()
    assert fuzz.run_example(cfg, _stream(fuzz))["frames"] == 8
    junk = [fuzz.pdu(bytes(range(k))) for k in range(12)] + [pmt.intern("x")]   # no eos mark
    assert fuzz.run_example(cfg, junk)["frames"] == 0


def test_harness_catches_a_swallowed_internal_exception(fuzz, monkeypatch):
    dmod = sys.modules["gnuradio.largesc.depacketizer"]
    parse, calls = dmod.parse_pdu, [0]

    def parse_pdu(msg):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyError("injected")
        return parse(msg)
    monkeypatch.setattr(dmod, "parse_pdu", parse_pdu)
    with pytest.raises(fuzz.Failure, match="swallowed an internal exception"):
        fuzz.run_example({"d": 1, "d_max": 2, "recovery": "zero"}, _stream(fuzz))


def test_harness_catches_an_exception_in_work(fuzz, monkeypatch):
    from gnuradio.largesc.core import recovery
    push, calls = recovery.ZeroRecovery._push, [0]

    def bad_push(self, tokens, states):
        calls[0] += 1
        if calls[0] == 4:
            raise RuntimeError("injected")
        return push(self, tokens, states)
    monkeypatch.setattr(recovery.ZeroRecovery, "_push", bad_push)
    with pytest.raises(fuzz.Failure, match="injected"):      # GNU Radio hangs; the timeout ends it
        fuzz.run_example({"d": 1, "d_max": 2, "recovery": "zero"}, _stream(fuzz), timeout_s=5)


def test_core_only_short_run(fuzz, capsys):
    """The strict check (no index twice, duplicates are duplicates) on hypothesis examples
    through the reference only: the mode the 10^5-case runs use."""
    assert fuzz.main(["--examples", "300", "--seed", "2", "--batch", "300", "--core-only", "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("examples: "))
    assert "failures: 0" in line and int(line.split()[1]) >= 300


def test_strict_check_is_not_vacuous(fuzz):
    from gnuradio.largesc.core.link.reassembly import Frame

    def fr(i, tok, sender=None):
        return Frame(i, (tok,) + (0,) * 7, (0,) + (3,) * 7, True, 0, i if sender is None else sender)
    run = [fr(i, 100 + i) for i in range(6)]
    assert fuzz.strict_check(run + [fr(4, 104), fr(5, 105)], []) == [
        "reference: index 4 after 5", "reference: frame 4 emitted twice (a duplicate)",
        "reference: frame 5 emitted twice (a duplicate)"]
    assert fuzz.strict_check(run + [fr(6, 104, sender=4)], []) == [
        "reference: frame 4 emitted twice (a duplicate)"]
    assert fuzz.strict_check(run + [fr(0, 7)], [6]) == []             # a resync starts a run


def test_frame_metadata_keeps_the_timeline_through_the_chain(fuzz):
    """70 of 100 leading packets lost: with the controller's `frame` metadata the chain puts
    out all 100 frames (the first 70 lost), without it 30 (the late-join rule)."""
    pkts, pk = fuzz.sender_stream(random.Random(4), 100, 1, 1, 2, 0)
    fuzz.watch_gr_log()
    cfg = {"d": 1, "d_max": 1, "recovery": "zero"}
    for meta, n in ((lambda k: {"frame": pmt.from_long(k)}, 100), (lambda k: None, 30)):
        msgs = [fuzz.pdu(p, meta(k)) for k, p in enumerate(pkts) if k >= 70]
        msgs.append(fuzz.eos_msg(pmt.from_long(100)))
        ref, _ = fuzz.reference(cfg, msgs)
        assert len(ref) == (100 if n == 100 else 30)
        assert fuzz.run_example(cfg, msgs)["frames"] == len(ref)
