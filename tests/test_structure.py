"""The architecture holds (docs/architecture.md): core never imports GNU Radio, the link logic
never imports torch, one module owns the profile default, every block has its qa_ file and YAML,
and the code is ruff-clean."""
import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "python" / "largesc"


def _modules(folder: Path) -> list[str]:
    """Dotted names (gnuradio.largesc....) of every module under `folder`."""
    out = []
    for f in sorted(folder.rglob("*.py")):
        rel = f.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(["gnuradio", "largesc", *parts]))
    return out


def _loaded_after_import(modules: list[str]) -> set[str]:
    """Import `modules` in a fresh interpreter (without running the block package's __init__,
    which loads the blocks) and return every module name then loaded."""
    code = f"""
import sys, types, json
pkg = types.ModuleType("gnuradio.largesc")
pkg.__path__ = [{str(PKG)!r}]
import gnuradio
sys.modules["gnuradio.largesc"] = pkg
import importlib
for m in {modules!r}:
    importlib.import_module(m)
print(json.dumps(sorted(sys.modules)))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={"NO_TORCH_COMPILE": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    import json
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


def test_core_loads_neither_gnuradio_nor_pmt():
    mods = _modules(PKG / "core")
    assert len(mods) >= 15
    loaded = _loaded_after_import(mods)
    bad = sorted(m for m in loaded if m == "pmt" or m.startswith(("pmt.", "gnuradio.gr", "gnuradio.blocks",
                                                                   "gnuradio.pdu", "gnuradio.digital")))
    assert not bad, f"core imports GNU Radio: {bad}"
    assert "torch" in loaded          # the check itself works: codec and recovery do load torch


def test_link_loads_no_torch():
    loaded = _loaded_after_import(_modules(PKG / "core" / "link"))
    assert "torch" not in loaded and "moshi" not in loaded
    assert "numpy" in loaded


# ------------------------------------------------------------------ one default profile
def test_profiles_module_is_the_one_source():
    from gnuradio.largesc.core import profiles
    assert profiles.DEFAULT_PROFILE == "mini"
    assert profiles.DEFAULT_PROFILE in profiles.PROFILES
    assert set(profiles.LM_PROFILES) <= set(profiles.PROFILES)
    assert set(profiles.FULL_SIZE) <= set(profiles.PROFILES)


@pytest.mark.parametrize("yml", sorted((REPO / "grc").glob("largesc_*.block.yml")), ids=lambda p: p.name)
def test_yaml_profile_defaults(yml):
    from gnuradio.largesc.core.profiles import DEFAULT_PROFILE, PROFILE_NAMES
    data = yaml.safe_load(yml.read_text())
    for p in data.get("parameters", []):
        if p["id"] == "profile":
            assert str(p["default"]) == DEFAULT_PROFILE, f"{yml.name}: profile default {p['default']}"
            assert set(p["options"]) == set(PROFILE_NAMES), yml.name


def test_block_constructor_defaults():
    from gnuradio import largesc

    from gnuradio.largesc.core.profiles import DEFAULT_PROFILE
    seen = 0
    for name in largesc.__all__:
        params = inspect.signature(getattr(largesc, name).__init__).parameters
        if "profile" in params:
            seen += 1
            assert params["profile"].default == DEFAULT_PROFILE, name
    assert seen >= 5


def _profile_defaults(parser):
    """Defaults of every --profile option of a parser and its sub-commands."""
    import argparse
    out = []
    for a in parser._actions:
        if "--profile" in a.option_strings:
            out.append(a.default)
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                out += _profile_defaults(sub)
    return out


def test_argparse_profile_defaults():
    from gnuradio.largesc.app import cli, run_options
    from gnuradio.largesc.core.profiles import DEFAULT_LM_PROFILE, DEFAULT_PROFILE, LM_PROFILES
    from gnuradio.largesc.evaluation import cli as eval_cli
    from gnuradio.largesc.training import train_lora
    parsers = [cli.build_parser(), run_options.build_parser(), eval_cli.build_parser()]
    defaults = [d for p in parsers for d in _profile_defaults(p)]
    assert len(defaults) >= 4
    assert all(d == DEFAULT_PROFILE for d in defaults), defaults
    # the LoRA trainer needs an LM: the default family's LM profile (core/profiles.py)
    assert _profile_defaults(train_lora.build_parser()) == [DEFAULT_LM_PROFILE] and DEFAULT_LM_PROFILE in LM_PROFILES


def test_scripts_take_the_default_from_profiles():
    """Scripts and benchmarks: every --profile/--profiles option names DEFAULT_PROFILE."""
    rx = re.compile(r"add_argument\(\s*\"--profiles?\"[^)]*")
    found = 0
    for f in sorted([*(REPO / "scripts").glob("*.py"), *(REPO / "benchmarks").glob("*.py")]):
        for m in rx.finditer(f.read_text()):
            found += 1
            assert "DEFAULT_PROFILE" in m.group(0), f"{f.name}: {m.group(0)}"
    assert found >= 3


# ------------------------------------------------------------------ blocks, qa files, YAML
def _block_modules():
    """Modules of python/largesc/ that define a GNU Radio block class."""
    out = []
    for f in sorted(PKG.glob("*.py")):
        if f.name.startswith(("qa_", "_")):
            continue
        tree = ast.parse(f.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == f.stem:
                out.append(f.stem)
    return out


def test_every_block_has_qa_file_and_yaml():
    blocks = _block_modules()
    from gnuradio import largesc
    assert sorted(blocks) == sorted(largesc.__all__)
    for b in blocks:
        assert (PKG / f"qa_{b}.py").is_file(), f"no qa_{b}.py"
        assert (REPO / "grc" / f"largesc_{b}.block.yml").is_file(), f"no YAML for {b}"


def test_block_folder_holds_blocks_only():
    """Besides blocks, qa files and the package files, python/largesc/ has only folders."""
    blocks = set(_block_modules())
    extra = [f.name for f in PKG.glob("*.py")
             if f.stem not in blocks and not f.name.startswith("qa_") and f.name != "__init__.py"]
    assert not extra, extra


def test_architecture_doc_names_every_folder():
    doc = (REPO / "docs" / "architecture.md").read_text()
    folders = sorted({str(p.parent.relative_to(PKG)) for p in PKG.rglob("__init__.py")} - {"."})
    assert len(folders) >= 8
    for f in folders:
        assert f"{f.split('/')[-1]}/" in doc, f"docs/architecture.md does not show {f}/"


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(REPO)], capture_output=True,
                       text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_recovery_choices_agree_with_the_registry():
    """One table of strategies (core/recovery/registry.py): the GRC option lists and labels, the
    blocks' defaults and every --recovery of the CLI take it from there."""
    import argparse

    from gnuradio.largesc.app import cli, run_options
    from gnuradio.largesc.core.recovery.registry import CHOICE_LABELS, CHOICES
    from gnuradio.largesc.evaluation import cli as eval_cli
    for name, pid in (("largesc_largesc_rx.block.yml", "recovery"), ("largesc_token_recovery.block.yml", "strategy")):
        data = yaml.safe_load((REPO / "grc" / name).read_text())
        p = next(p for p in data["parameters"] if p["id"] == pid)
        assert p["default"] == "auto" and p["options"] == list(CHOICES), name
        assert p["option_labels"] == list(CHOICE_LABELS), name

    def recovery_choices(parser):
        out = []
        for a in parser._actions:
            if "--recovery" in a.option_strings:
                out.append(tuple(a.choices))
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    out += recovery_choices(sub)
        return out
    found = [c for p in (cli.build_parser(), run_options.build_parser(), eval_cli.build_parser())
             for c in recovery_choices(p)]
    assert len(found) >= 3 and all(c == CHOICES for c in found), found


def test_block_port_names_come_from_gr_support():
    """Port names are defined once (gr_support/ports.py): no block registers, connects or
    publishes on a string literal."""
    import re
    pat = re.compile(r"(message_port_register_(?:hier_)?(?:in|out)|message_port_pub)\(\s*[\"']"
                     r"|msg_connect\([^)]*[\"'](?:pdus|feedback|stats|ctrl)[\"']")
    bad = []
    for f in sorted((REPO / "python" / "largesc").glob("*.py")):
        if f.name.startswith("qa_"):
            continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if pat.search(line):
                bad.append(f"{f.name}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_docs_do_not_cite_issue_numbers():
    """Docs and docstrings describe behaviour, not the tracker's issue numbers (those change)."""
    import re
    pat = re.compile(r"\bissues? \d+\b", re.IGNORECASE)     # (upstream ones are cited as "GNU Radio issue #N")
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "python").rglob("*.py"))]
    bad = [f"{f.relative_to(REPO)}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
           if pat.search(line)]
    assert not bad, bad
