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
