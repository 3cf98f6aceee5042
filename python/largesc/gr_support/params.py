"""Parameter checks shared by the blocks (constructors and the setters GRC callbacks call).

Every check raises ValueError with a message that starts with ``"<block>: <param> must be"``
and ends with the value it got, e.g.
``adaptive_controller: bandwidth_bps must be a finite number in [550, 2062.5] (bps), got nan``.
A bad value is thus rejected when the block is built, before the flowgraph starts, and the
message says which parameter to fix. The ranges themselves live in the blocks (docstrings) and
are mirrored in each ``grc/*.block.yml`` ``asserts:``.

Plain Python only: no GNU Radio, numpy or torch import, so any module may use it.
"""
import math
import numbers
import os
import re

# The limits several blocks share (one place, so that blocks and YAML agree).
MAX_THREADS = 64                 # torch intra-op threads per model block
MAX_STATS_INTERVAL = 10 ** 6     # frames (or packets) between `stats` messages
MAX_SEED = 2 ** 32 - 1           # seeds are 0..2**32-1 (numpy / random / torch all take them)
MAX_D = 8                        # copy distance d (frames)
MAX_D_MAX = 64                   # receiver wait for copies (frames); reassembly's max_jump is 64
MAX_GRACE_S = 3600.0             # end-of-stream grace period (s)
MAX_EDGES = 64                   # message connections into one block (end_of_stream.py)
SAFETENSORS_SUFFIXES = (".safetensors", ".sft", ".sfts")    # what moshi loads without torch.load
_DEVICE = re.compile(r"^(cpu|auto|cuda|cuda:\d{1,2})$")


def fail(block, name, what, value):
    """Raise the module's parameter error: '<block>: <name> must be <what>, got <value!r>'."""
    raise ValueError(f"{block}: {name} must be {what}, got {value!r}")


def _num(x):
    return str(x) if isinstance(x, int) else f"{x:g}"


def _range_text(lo, hi, lo_open=False, hi_open=False):
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {_num(lo)}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {_num(hi)}"
    return ""


def check_int(block, name, value, lo=None, hi=None, what=""):
    """An integer in [lo, hi] (either bound may be None). Integral floats (48000.0) are taken;
    bools, strings, NaN and fractions are not. Returns the int."""
    desc = ("an integer " + _range_text(lo, hi)).strip() + (f" ({what})" if what else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(block, name, desc, value)
    if not isinstance(value, numbers.Integral):
        f = float(value)
        if not (math.isfinite(f) and f.is_integer()):
            fail(block, name, desc, value)
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        fail(block, name, desc, value)
    return v


def check_float(block, name, value, lo=None, hi=None, *, lo_open=False, hi_open=False,
                finite=True, what=""):
    """A real number in [lo, hi] (open ends with lo_open / hi_open); finite unless finite=False.
    Bools and strings are refused. Returns the float."""
    desc = (("a finite number " if finite else "a number ") + _range_text(lo, hi, lo_open, hi_open)).strip()
    desc += f" ({what})" if what else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(block, name, desc, value)
    v = float(value)
    if math.isnan(v) or (finite and not math.isfinite(v)):
        fail(block, name, desc, value)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        fail(block, name, desc, value)
    if hi is not None and (v > hi or (hi_open and v == hi)):
        fail(block, name, desc, value)
    return v


def check_bool(block, name, value):
    """True/False (also numpy bools and the ints 0/1). Strings are refused: bool('False') is True."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    fail(block, name, "True or False", value)


def check_choice(block, name, value, choices):
    """One of `choices` (compared with ==; strings stay case-sensitive)."""
    try:
        ok = isinstance(value, str) and value in choices
    except TypeError:
        ok = False
    if not ok:
        fail(block, name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_device(block, name, value):
    """'cpu', 'cuda', 'cuda:N' or 'auto' (whether CUDA exists is checked when the model loads)."""
    if not isinstance(value, str) or not _DEVICE.match(value):
        fail(block, name, "'cpu', 'cuda', 'cuda:N' or 'auto'", value)
    return value


def check_file(block, name, path, *, allow_empty=True, allow_dir=False, suffixes=None):
    """'' (when allow_empty) or the path of an existing, readable file (or directory when
    allow_dir). `suffixes`: a file must end in one of them (e.g. SAFETENSORS_SUFFIXES, so that
    nothing reaches a torch.load fallback). Returns the path as str ('' for none)."""
    if path is None and allow_empty:
        return ""
    if not isinstance(path, (str, os.PathLike)):
        fail(block, name, "a file path (str)", path)
    p = os.fspath(path)
    if p == "":
        if allow_empty:
            return ""
        fail(block, name, "a file path (it is empty)", path)
    p = os.path.expanduser(p)
    if allow_dir and os.path.isdir(p):
        return p
    if not os.path.isfile(p):
        fail(block, name, "an existing file" + (" or directory" if allow_dir else ""), path)
    if not os.access(p, os.R_OK):
        fail(block, name, "a readable file", path)
    if suffixes and not p.endswith(tuple(suffixes)):
        fail(block, name, "a safetensors file (" + ", ".join(suffixes) + "); other formats "
             "would be unpickled by torch.load", path)
    return p
