"""Short run of scripts/fuzz_depacketizer.py (CI); the full run uses --count 1000000."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_depacketizer.py"


def test_fuzz_short_run(capsys):
    spec = importlib.util.spec_from_file_location("fuzz_depacketizer", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--count", "20000", "--seed", "1", "--block-every", "20"]) == 0
    out = capsys.readouterr().out
    assert "packets: 20000  exceptions: 0  invariant violations: 0" in out


def test_fuzz_short_run_compact_formats(capsys):
    spec = importlib.util.spec_from_file_location("fuzz_depacketizer_compact", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for fmt in ("compact", "compact_crc"):
        assert mod.main(["--count", "20000", "--seed", "2", "--block-every", "20", "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert f"format: {fmt}" in out
        assert "packets: 20000  exceptions: 0  invariant violations: 0" in out
