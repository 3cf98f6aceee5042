"""Short run of scripts/fuzz_depacketizer.py (CI); the full run uses --count 1000000.

The fuzzer's check is the strict one: output indices consecutive except at a resync (a clocked
receiver's clock slip may not break the run) and no received frame emitted twice (a duplicated
packet is a duplicate). Short sessions so that clocked receivers and metadata hints are in."""
import importlib.util
import random
from pathlib import Path

import pytest

from gnuradio.largesc.core.link.packet import Packetizer
from gnuradio.largesc.core.link.reassembly import Frame, Reassembler

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_depacketizer.py"


@pytest.fixture
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_depacketizer", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fuzz_short_run(fuzz, capsys):
    assert fuzz.main(["--count", "20000", "--seed", "1", "--block-every", "20", "--session", "2500"]) == 0
    out = capsys.readouterr().out
    assert "packets: 20000  exceptions: 0  invariant violations: 0" in out
    assert "false text messages: 0" in out and "text packets: 0 " not in out


def test_fuzz_short_run_compact_formats(fuzz, capsys):
    for fmt in ("compact", "compact_crc"):
        assert fuzz.main(["--count", "20000", "--seed", "2", "--block-every", "20", "--format", fmt,
                          "--session", "2500"]) == 0
        out = capsys.readouterr().out
        assert f"format: {fmt}" in out
        assert "packets: 20000  exceptions: 0  invariant violations: 0" in out
        assert "false text messages: 0" in out


def _frame(index, tokens, sender=None, received=True):
    return Frame(index, tuple(tokens) + (0,) * (8 - len(tokens)),
                 (0,) * len(tokens) + (3,) * (8 - len(tokens)), received, 0,
                 index if sender is None else sender)


def test_strict_check_catches_a_slip_and_a_frame_emitted_twice(fuzz):
    """Not vacuous: what the old clocked receiver did with delivery 0..5, 4, 5 (frames 4 and 5
    again, the index run broken) and a re-based run that repeats frames are violations; a
    resync may start a new run."""
    frames = [_frame(n, [n + 1]) for n in range(6)]
    errors, state = [], fuzz.new_state()
    fuzz.check(frames + [_frame(4, [5]), _frame(5, [6])], state, errors, False)
    assert errors == ["index 4 after 5", "frame 4 (epoch 0) emitted twice, at index 4",
                      "frame 5 (epoch 0) emitted twice, at index 5"]
    errors, state = [], fuzz.new_state()
    fuzz.check(frames + [_frame(6, [5], sender=4)], state, errors, False)
    assert errors == ["frame 4 (epoch 0) emitted twice, at index 6"]
    errors, state = [], fuzz.new_state()
    fuzz.check(frames, state, errors, False)
    fuzz.check([_frame(0, [9])], state, errors, True)
    assert errors == []


def test_clocked_duplicates_pass_the_strict_check(fuzz):
    """Duplicates and reordering into a clocked receiver: one index run, no frame twice."""
    rng = random.Random(5)
    pz = Packetizer(d=1, epoch=1)
    pkts = [pz.push([rng.randrange(2048) for _ in range(8)], 6, 0) for _ in range(300)]
    ra = Reassembler(d=1, d_max=1, clocked=True, frame_period=1.0, timeout=2.0, packet_format="v1")
    errors, state, t = [], fuzz.new_state(), 0.0
    for n, p in enumerate(pkts):
        for q in [p] + [pkts[max(0, n - rng.randrange(1, 6))] for _ in range(rng.randrange(3))]:
            t += 0.4
            fuzz.check(ra.push(q, now=t), state, errors, False)
    fuzz.check(ra.flush(until=300), state, errors, False)
    assert errors == [] and ra.counters["duplicates"] > 100 and state["last"] >= 299
