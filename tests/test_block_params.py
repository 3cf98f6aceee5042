"""Every block parameter has a range: bad values are refused at construction, naming the parameter.

Blocks are discovered from grc/*.block.yml (id largesc_X -> module gnuradio.largesc.X, class X)
and their parameters from the constructor signature, so a new block or parameter is walked
automatically: every parameter gets the bad values of its type (wrong type, NaN, inf, bool
for numbers, strings for bools, ...) plus the named ones below (zero, negative, huge, out of
range, bogus names and paths). The same values must also fail the block's YAML `asserts:`
(what GRC checks before generating a flowgraph), and the setters GRC callbacks call must refuse
them too. Construction only: a bad value must raise before any model is loaded.
"""
import importlib
import inspect
import math
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BLOCK_FILES = sorted((REPO / "grc").glob("largesc_*.block.yml"))
NAN, INF = float("nan"), float("inf")
MISSING = "/nonexistent/largesc/missing.safetensors"
FILE_PARAMS = {"record_file", "mimi_weights", "lora", "lm_weights", "lm_config", "trace_file"}
SAFETENSORS_PARAMS = {"mimi_weights", "lora", "lm_weights"}

# Named bad values (beyond the type-generic ones). Bounds are the documented ranges.
BAD = {
    "samp_rate": [0, -24000, 999, 10 ** 9, 24000.5, 44101],
    "num_threads": [0, -1, 65, 10 ** 9],
    "stats_interval": [0, -1, 10 ** 6 + 1],
    "num_codebooks": [0, -1, 9],
    "codec_window": [-2, 4, 10],
    "bandwidth_bps": [0.0, -1100.0, 549.9, 2062.6, 1e12],
    "d": [0, -1, 9, 10 ** 9],
    "d_max": [0, -1, 65, 10 ** 9],
    "loss_rate": [-0.1, -1.0, 1.1],
    "p": [-0.1, -1.0, 1.1],
    "dtx_tokens": [-1, 4, 10 ** 9],
    "window": [0, -1, 1001],
    "frames_per_packet": [0, -1, 2, 9],          # 2 > d = 1 (default)
    "epoch": [-2, 4, 10 ** 9],
    "feedback_timeout": [-1, 10 ** 6 + 1],
    "timeout_ms": [-1.0, -1e-3, 60000.1, 1e12],
    "feedback_interval": [0, -1, 10 ** 4 + 1],
    "feedback_window": [0, -1, 10 ** 4 + 1],
    "eos_grace_s": [-1.0, 3600.1, 1e12],
    "mean_burst": [0.0, 0.5, -1.0, 1e7],
    "seed": [-2, 2 ** 32, 2 ** 40],
    "temperature": [-0.1, -1.0, 10.1],
    "top_k": [-1, 2049, 10 ** 9],
    "deadline_ms": [-1.0, 10000.1, 1e12],
    "prime_frames": [0, -1, 257],
    "profile": ["bogus", "", "TINY"],
    "lm_profile": ["bogus", "mimi"],
    "device": ["gpu", "cuda:x", "", "CPU"],
    "strategy": ["magic", ""],
    "recovery": ["oracle", ""],
    "model": ["bogus", ""],
    "feedback": ["bogus"],
    "packet_format": ["v2", "", "V1", "compact-crc", "compact "],
    "callsign": ["N0 CALL", "x" * 17, "DL1ÄBC", "a\nb"],
    "text_share": [-0.01, 0.51, 1.0],
    "callsign_period": [0, -1, 10 ** 6 + 1],
    # packet PHY (packet_phy*.py)
    "snr_db": [-30.1, 100.1, -1e12, 1e12],
    "freq_offset": [0.5, -0.5, 1.0, -1.0],          # open interval (-0.5, 0.5) cycles/sample
    "sps": [0, 1, -1, 65, 10 ** 9],
    "bt": [0.0, 0.09, 1.1, -1.0],
    "threshold": [-1, 17, 10 ** 9],
    "eos_copies": [0, -1, 17, 10 ** 9],
    "preamble_bytes": [0, -1, 65, 10 ** 9],
    "postamble_bytes": [0, -1, 65, 10 ** 9],
    "pre_padding": [-1, 100001, 10 ** 9],
    "post_padding": [-1, 100001, 10 ** 9],
    "ramp": [0, 1, -1, 33, 10 ** 9],                # 33 > 8 * sps * min(pre, postamble) = 32
    "upstream_edges": [0, -1, 65, 10 ** 9],
}
# Values bad only for some blocks (a rate other than 24 kHz is fine for the TX/RX hier blocks).
BLOCK_BAD = {
    ("mimi_encoder", "samp_rate"): [16000, 48000],
    ("mimi_decoder", "samp_rate"): [16000, 48000],
    ("depacketizer", "d_max"): [],                  # d_max < d: see test_cross_parameter_rules
}
# Named bad values that replace BAD's for one block (packet_phy_rx: samp_rate 0 = from UHD's tag).
BLOCK_BAD_ONLY = {
    ("token_recovery", "codec"): ["x", 3],        # Python-only: largesc_rx hands its decoder's codec
    ("packet_phy_rx", "samp_rate"): [-1.0, -24000, 0.5, 1e-300, 1e9 + 1, 1e12],
}


def named_bad(block, name):
    if (block, name) in BLOCK_BAD_ONLY:
        return list(BLOCK_BAD_ONLY[(block, name)])
    return BAD.get(name, []) + BLOCK_BAD.get((block, name), [])
# Caught by the constructor only: GRC's int fields refuse 24000.5 themselves, and the resampling
# ratio of an odd rate (44101 Hz -> 24000/44101) is not worth an assert expression.
CTOR_ONLY = {("samp_rate", 44101), ("samp_rate", 24000.5)}
GENERIC = {
    int: ["3", 1.5, NAN, INF, -INF, None, True, [1]],
    float: ["0.5", NAN, INF, -INF, None, True, [0.5]],
    bool: ["False", "True", 2, -1, 0.5, None],
    str: [123, 1.5, None, ["tiny"]],
    tuple: ["x", None, NAN, ()],
    list: ["x", None, NAN, []],
}


# Blocks whose YAML `asserts:` do not yet mirror their constructor checks: their YAML test is
# expected to fail until they do (then drop them from this set). Constructors and setters are
# checked strictly for every block.
PENDING = set()


def block_classes():
    """(class name, YAML path) per block; the class name comes from the YAML's make template."""
    out = []
    for path in BLOCK_FILES:
        data = yaml.safe_load(path.read_text())
        m = re.search(r"largesc\.(\w+)\(", data["templates"]["make"])
        out.append((m.group(1) if m else data["id"][len("largesc_"):], path))
    return out


BLOCKS = block_classes()


def block_class(name):
    """The block class `name`: exported by gnuradio.largesc, or defined in one of its modules."""
    pkg = importlib.import_module("gnuradio.largesc")
    if hasattr(pkg, name):
        return getattr(pkg, name)
    for mod in sorted((REPO / "python" / "largesc").glob("*.py")):
        if re.search(rf"^class {re.escape(name)}\b", mod.read_text(), re.M):
            return getattr(importlib.import_module(f"gnuradio.largesc.{mod.stem}"), name)
    raise LookupError(f"no class {name} in gnuradio.largesc")


def pending(block):
    return [pytest.mark.xfail(reason=f"{block}: YAML asserts do not mirror the constructor checks yet",
                              strict=True)] if block in PENDING else []


def constructor_params(cls):
    sig = inspect.signature(cls.__init__)
    return {n: p.default for n, p in sig.parameters.items() if n != "self"}


def bad_values(block, name, default, tmp_files):
    vals = []
    if name in FILE_PARAMS:
        vals += [123, 1.5, ["x"], MISSING, "/nonexistent/dir/"]
        if name in SAFETENSORS_PARAMS:
            vals += [tmp_files["pickle"]]              # exists, but not safetensors (torch.load)
        return vals
    kind = type(default)
    vals += GENERIC.get(kind, [])
    vals += named_bad(block, name)
    if kind is bool:
        return vals
    return vals


def cases():
    out = []
    for block, _ in BLOCKS:
        try:
            cls = block_class(block)
        except Exception:                                   # noqa: BLE001 - reported by the test
            out.append(pytest.param(block, "<class>", 0, id=f"{block}-class"))
            continue
        for name, default in constructor_params(cls).items():
            for i, _v in enumerate(bad_values(block, name, default, {"pickle": "x"})):
                out.append(pytest.param(block, name, i, id=f"{block}-{name}-{i}"))
    return out


@pytest.fixture(scope="session")
def tmp_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("params")
    pickle = d / "weights.pt"
    pickle.write_bytes(b"\x80\x04N.")                 # a pickle: must never reach torch.load
    return {"pickle": str(pickle)}


def base_kwargs(block):
    """Constructor arguments that keep everything else valid (cheap where there is a choice)."""
    return {"profile": "tiny"} if "profile" in constructor_params(block_class(block)) else {}


def assert_refused(block, name, value, kwargs, exc_types=(ValueError,)):
    cls = block_class(block)
    with pytest.raises(exc_types) as info:
        cls(**{**kwargs, name: value})
    msg = str(info.value)
    assert re.search(rf"\b{re.escape(name)}\b", msg), f"{block}({name}={value!r}): message does not name it: {msg}"
    assert msg.startswith(f"{block}: "), f"{block}({name}={value!r}): message does not name the block: {msg}"


def test_every_block_is_discovered():
    names = {b for b, _ in BLOCKS}
    assert {"mimi_encoder", "mimi_decoder", "adaptive_controller", "depacketizer",
            "packet_erasure_channel", "token_recovery", "largesc_tx", "largesc_rx"} <= names


def test_every_parameter_has_bad_values():
    for block, _ in BLOCKS:
        for name, default in constructor_params(block_class(block)).items():
            assert bad_values(block, name, default, {"pickle": "x"}), f"{block}.{name} has no bad values"


@pytest.mark.parametrize("block,name,index", cases())
def test_bad_parameter_is_refused(block, name, index, tmp_files):
    if name == "<class>":
        block_class(block)                                  # raises: the YAML names no class
    default = constructor_params(block_class(block))[name]
    value = bad_values(block, name, default, tmp_files)[index]
    assert_refused(block, name, value, base_kwargs(block))


@pytest.mark.parametrize("block,kwargs,name", [
    ("depacketizer", {"d": 3, "d_max": 2}, "d_max"),
    ("largesc_rx", {"d": 3, "d_max": 2, "recovery": "zero"}, "d_max"),
    ("adaptive_controller", {"d": 2, "frames_per_packet": 3}, "frames_per_packet"),
    ("largesc_tx", {"d": 2, "frames_per_packet": 3}, "frames_per_packet"),
    ("adaptive_controller", {"d": 2, "frames_per_packet": 2, "packet_format": "compact"}, "frames_per_packet"),
    ("largesc_tx", {"d": 2, "frames_per_packet": 2, "packet_format": "compact_crc"}, "frames_per_packet"),
    ("packet_erasure_channel", {"model": "gilbert_elliott", "p": 0.9, "mean_burst": 2.0}, "p"),
    ("packet_erasure_channel", {"model": "trace", "trace_file": ""}, "trace_file"),
    ("largesc_tx", {"profile": "tiny", "mimi_weights": "/etc"}, "mimi_weights"),   # a folder
])
def test_cross_parameter_rules(block, kwargs, name):
    kwargs = {**base_kwargs(block), **kwargs}
    assert_refused(block, name, kwargs.pop(name, ""), kwargs)


def test_bad_trace_file_contents(tmp_path):
    bad = tmp_path / "trace.txt"
    bad.write_text("0101x\n")
    assert_refused("packet_erasure_channel", "trace_file", str(bad), {"model": "trace"})
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert_refused("packet_erasure_channel", "trace_file", str(empty), {"model": "trace"})


def test_edges_of_the_ranges_are_accepted(tmp_path):
    from gnuradio.largesc.adaptive_controller import adaptive_controller
    from gnuradio.largesc.depacketizer import depacketizer
    from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel
    from gnuradio.largesc.token_recovery import token_recovery
    for kw in ({"bandwidth_bps": 550}, {"bandwidth_bps": 2062.5}, {"dtx_tokens": 0}, {"window": 1000},
               {"d": 8, "frames_per_packet": 8, "packet_format": "v1"}, {"epoch": 3}, {"epoch": -1}, {"feedback_timeout": 0},
               {"loss_rate": 1}, {"d": 2.0}, {"stats_interval": 10 ** 6}):
        adaptive_controller(**kw)
    for kw in ({"d": 8, "d_max": 64}, {"timeout_ms": 60000}, {"timeout_ms": 0}, {"eos_grace_s": 0},
               {"feedback_interval": 10 ** 4, "feedback_window": 1}, {"hold_last": 1}):
        depacketizer(**kw)
    trace = tmp_path / "t.txt"
    trace.write_text("0110")
    for kw in ({"p": 1.0}, {"model": "gilbert_elliott", "p": 1.0, "mean_burst": 1.0},
               {"model": "gilbert_elliott", "p": 0.5, "mean_burst": 1.0}, {"seed": 2 ** 32 - 1},
               {"model": "trace", "trace_file": str(trace)}, {"eos_grace_s": 3600}):
        packet_erasure_channel(**kw)
    for kw in ({"temperature": 0}, {"temperature": 10}, {"top_k": 0}, {"top_k": 2048},
               {"deadline_ms": 10000}, {"seed": 2 ** 32 - 1}, {"profile": "mini"}):
        token_recovery(strategy="zero", **kw)


# ------------------------------------------------------------------ setters (GRC callbacks)
SETTER_BLOCKS = {}


def setter_cases():
    """(block, setter, parameter) for every callback in the YAML: set_x(${param})."""
    out = []
    for block, path in BLOCKS:
        for cb in yaml.safe_load(path.read_text())["templates"].get("callbacks", []) or []:
            m = re.match(r"\s*(\w+)\(\$\{\s*(\w+)\s*\}\)", cb)
            assert m, f"{path.name}: callback {cb!r} is not set_x(${{param}})"
            out.append(pytest.param(block, m.group(1), m.group(2), id=f"{block}.{m.group(1)}"))
    return out


def built(block):
    """One instance per block (tiny models, cheap recovery), built once for all setter tests."""
    if block not in SETTER_BLOCKS:
        kw = base_kwargs(block)
        if block == "largesc_rx":
            kw["recovery"] = "zero"
        SETTER_BLOCKS[block] = block_class(block)(**kw)
    return SETTER_BLOCKS[block]


@pytest.mark.parametrize("block,setter,name", setter_cases())
def test_setter_refuses_bad_values(block, setter, name, tmp_files):
    blk = built(block)
    default = constructor_params(block_class(block))[name]
    for value in bad_values(block, name, default, tmp_files):
        if name == "frames_per_packet":
            continue
        with pytest.raises(ValueError) as info:
            getattr(blk, setter)(value)
        assert re.search(rf"\b{name}\b", str(info.value)), f"{block}.{setter}({value!r}): {info.value}"
    getattr(blk, setter)(default)                      # the default is still accepted


def test_every_callback_is_a_setter_with_checks():
    assert setter_cases(), "no callbacks found"


# ------------------------------------------------------------------ YAML asserts mirror the checks
def yaml_namespace(data):
    ns = {}
    for p in data["parameters"]:
        default = str(p.get("default", ""))
        if p.get("dtype") in ("int", "real", "float", "bool", "raw",
                              "complex_vector", "real_vector", "float_vector", "int_vector"):
            ns[p["id"]] = eval(default, {"__builtins__": {}})          # noqa: S307 - our own YAML
        else:
            ns[p["id"]] = default
    return ns


def yaml_ok(data, ns):
    """True when every assert of the block holds (as GRC evaluates them) for the values `ns`."""
    env = {"__builtins__": {"len": len, "float": float, "int": int}, "math": math}
    for a in data.get("asserts", []):
        expr = a.strip()[2:-1].strip()       # ${ expr }
        try:
            if not eval(expr, env, dict(ns)):                          # noqa: S307
                return False
        except Exception:                                              # noqa: BLE001
            return False
    return True


@pytest.mark.parametrize("block,path", [pytest.param(b, p, id=p.name, marks=pending(b)) for b, p in BLOCKS])
def test_yaml_asserts_accept_defaults_and_refuse_bad_numbers(block, path):
    data = yaml.safe_load(path.read_text())
    ns = yaml_namespace(data)
    assert yaml_ok(data, ns), f"{path.name}: the defaults fail the asserts"
    numeric = [p["id"] for p in data["parameters"] if p.get("dtype") in ("int", "real")]
    for name in numeric:
        kind = int if data["parameters"][[p["id"] for p in data["parameters"]].index(name)]["dtype"] == "int" else float
        values = [v for v in named_bad(block, name)
                  if isinstance(v, (int, float)) and (name, v) not in CTOR_ONLY] + ([NAN, INF, -INF] if kind is float else [])
        assert values, f"{path.name}: numeric parameter {name} has no bad values to test"
        for v in values:
            assert not yaml_ok(data, {**ns, name: v}), f"{path.name}: asserts accept {name} = {v!r}"
    if "packet_format" in ns:                    # an enum: GRC refuses other values; the assert too
        for v in BAD["packet_format"]:
            assert not yaml_ok(data, {**ns, "packet_format": v}), f"{path.name}: asserts accept {v!r}"
        if "frames_per_packet" in ns:
            assert not yaml_ok(data, {**ns, "packet_format": "compact", "frames_per_packet": 2, "d": 2})
            assert yaml_ok(data, {**ns, "packet_format": "compact"})
    for name in ("profile", "lm_profile", "device"):
        if name in ns and not any(p["id"] == name and p.get("options") for p in data["parameters"]):
            for v in BAD.get(name, []):
                assert not yaml_ok(data, {**ns, name: v}), f"{path.name}: asserts accept {name} = {v!r}"


@pytest.mark.parametrize("value,ok", [
    ([1.0], True), ([0, 0.5j], True), ([1, 0.5, 0.25 + 0.1j], True),
    ([], False), ([0], False), ([0, 0j], False), ([NAN], False), ([1, INF], False),
    ([complex(0, NAN)], False), ([complex(-INF, 1)], False),
])
def test_yaml_taps_assert_mirrors_check_taps(value, ok):
    """packet_phy taps (a complex_vector, not walked above): non-empty, finite, not all zero."""
    from gnuradio.largesc.packet_phy import packet_phy
    data = yaml.safe_load((REPO / "grc" / "largesc_packet_phy.block.yml").read_text())
    ns = yaml_namespace(data)
    assert yaml_ok(data, {**ns, "taps": value}) is ok, f"asserts {'refuse' if ok else 'accept'} taps = {value!r}"
    if ok:
        packet_phy(taps=value)
    else:
        assert_refused("packet_phy", "taps", value, {})
