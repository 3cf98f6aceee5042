#!/usr/bin/env python3
"""Render each example flowgraph (examples/*.grc) to a PNG next to it, as GRC's "Screen Capture" does.

    .venv/bin/python scripts/render_flowgraphs.py                 # every examples/*.grc
    .venv/bin/python scripts/render_flowgraphs.py examples/udp_tx.grc --out-dir /tmp

The PNGs (examples/<name>.png) are committed; they are not made in CI. Rerun this after editing
an example (or a block's YAML: labels, parameters shown on the block, ports) and commit the
images that changed.

How: the script starts GNU Radio Companion's own GUI (gnuradio.grc.gui: Platform, Application,
MainWindow, one notebook page per flowgraph) on a private X server (Xvfb), with this module's
grc/ on GRC_BLOCKS_PATH, lets GRC load the flowgraphs, and then does for each page exactly what
File > Screen Capture does (Application: FLOW_GRAPH_SCREEN_CAPTURE -> Utils.make_screenshot):
the flowgraph's extents plus one grid of padding, a cairo ImageSurface, the canvas background
colour (no transparent background), and the canvas' own create_labels / create_shapes / draw.
GRC's GUI preferences are a fresh temporary file, so the images show GRC's default view (block
comments shown, variables and disabled blocks shown, parameter values, no block ids) whatever
your ~/.gnuradio/grc.conf says.

Needs: Xvfb (`xvfb-run`) and GTK 3 introspection data; on Debian / Ubuntu
`sudo apt install xvfb gir1.2-gtk-3.0` (the script installs nothing; it says what is missing).
The script re-executes itself under `xvfb-run -a` (a 96 dpi virtual screen), so it works on a
headless machine and does not depend on your desktop's display settings; `--use-display` draws
on the current $DISPLAY instead, e.g. under your own Xvfb:

    xvfb-run -a .venv/bin/python scripts/render_flowgraphs.py --use-display

(Text is drawn with the machine's fonts via fontconfig: another machine may give other pixels.)

Exit status: 0 when every flowgraph was rendered and GRC found no errors in it; 1 when a
flowgraph has errors (a block GRC does not know, a failed assert: GRC draws its name in red;
the PNG is still written, the errors are printed); 2 when something needed is missing or a
capture failed. Blocks whose boxes overlap (coordinates in the .grc) are listed as `layout:`
lines, without changing the exit status.
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
GRC_DIR = REPO / "grc"
CHILD_ENV = "LARGESC_RENDER_UNDER_XVFB"          # set when re-executed under xvfb-run
XVFB_SCREEN = "-screen 0 1920x1200x24 -dpi 96"
MAX_PNG_BYTES = 500 * 1024


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("grc", nargs="*", type=Path,
                    help="flowgraphs to render (default: examples/*.grc)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="where to write <name>.png (default: next to each .grc)")
    ap.add_argument("--use-display", action="store_true",
                    help="draw on the current $DISPLAY instead of re-executing under xvfb-run")
    return ap.parse_args(argv)


def die(msg):
    """Something needed is missing: say what, exit with status 2."""
    print(f"render_flowgraphs: {msg}", file=sys.stderr)
    sys.exit(2)


def reexec_under_xvfb(argv):
    """Run this script again under `xvfb-run -a` (a private X server); never returns."""
    xvfb_run = shutil.which("xvfb-run")
    if not xvfb_run:
        die("xvfb-run not found. GRC's canvas needs an X display; install "
                 "Xvfb (Debian / Ubuntu: sudo apt install xvfb), or pass --use-display to draw on "
                 "the current $DISPLAY.")
    env = dict(os.environ, **{CHILD_ENV: "1"})
    cmd = [xvfb_run, "-a", "-s", XVFB_SCREEN, sys.executable, str(Path(__file__).resolve())] + argv
    os.execve(xvfb_run, cmd, env)


def check_gtk():
    try:
        import gi
        gi.require_version("Gtk", "3.0")
        gi.require_version("PangoCairo", "1.0")
        from gi.repository import Gtk  # noqa: F401
    except (ImportError, ValueError) as e:
        die(f"GTK 3 for Python is missing ({e}); GRC's GUI needs it. "
                 "Debian / Ubuntu: sudo apt install gir1.2-gtk-3.0 python3-gi-cairo")
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        die("no $DISPLAY (run without --use-display to use xvfb-run)")


def overlaps(flow_graph):
    """Pairs of drawn blocks (with their ports; their comments as GRC shows them) whose boxes
    intersect: the .grc's coordinates put one over the other, and GRC (and the PNG) shows it so."""
    from gnuradio.grc.gui import Actions
    show_comments = Actions.TOGGLE_SHOW_BLOCK_COMMENTS.get_active()
    boxes = []
    for elem in flow_graph._elements_to_draw:         # what the capture draws
        if not elem.is_block:
            continue
        boxes.append((elem.name, elem.name, elem.get_extents()))
        if show_comments and elem.enabled and getattr(elem, "_comment_layout", None):
            boxes.append((elem.name, f"{elem.name} (comment)", elem.get_extents_comment()))
    out = []
    for i, (owner_a, a, (ax0, ay0, ax1, ay1)) in enumerate(boxes):
        for owner_b, b, (bx0, by0, bx1, by1) in boxes[i + 1:]:
            if owner_a != owner_b and min(ax1, bx1) > max(ax0, bx0) and min(ay1, by1) > max(ay0, by0):
                out.append(f"{a} and {b}")
    return out


def render(grc_files, out_dir):
    """Open every flowgraph in GRC's GUI and screen-capture each page.
    Returns ({png: (GRC errors, overlapping blocks)}, [failures])."""
    # Before GRC's GUI modules are imported: gui.Config reads GRC_PREFS_PATH at import time.
    prefs_dir = tempfile.mkdtemp(prefix="largesc-grc-prefs-")
    try:
        return _render(grc_files, out_dir, prefs_dir)
    finally:
        shutil.rmtree(prefs_dir, ignore_errors=True)


def _render(grc_files, out_dir, prefs_dir):
    os.environ["GRC_PREFS_PATH"] = os.path.join(prefs_dir, "grc.conf")
    os.environ["GRC_BLOCKS_PATH"] = os.pathsep.join(
        p for p in (str(GRC_DIR), os.environ.get("GRC_BLOCKS_PATH", "")) if p)

    from gi.repository import GLib
    from gnuradio import gr
    from gnuradio.grc.gui import Utils
    from gnuradio.grc.gui.Application import Application  # gui.Utils first is a circular import
    from gnuradio.grc.gui.Platform import Platform  # in gnuradio/grc/main.py's order:

    # As gnuradio-companion (gnuradio/grc/main.py) builds it: block paths from the config,
    # which includes GRC_BLOCKS_PATH.
    platform = Platform(version=gr.version(),
                        version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()),
                        prefs=gr.prefs(), install_prefix=gr.prefix())
    platform.build_library()
    missing = [b for b in ("largesc_largesc_tx", "largesc_packet_phy") if b not in platform.blocks]
    if missing:
        die(f"GRC did not load {missing} from {GRC_DIR}")

    results = {}
    failures = []

    class Capture(Application):
        """GRC's application; once its pages are loaded, capture each one and quit."""

        def do_activate(self):
            Application.do_activate(self)        # main window, one page per file (as GRC does)
            GLib.idle_add(self._capture_all)

        def _capture_all(self):
            try:
                notebook = self.main_window.notebook
                pages = [notebook.get_nth_page(i) for i in range(notebook.get_n_pages())]
                by_path = {os.path.abspath(p.file_path): p for p in pages if p.file_path}
                for grc in grc_files:
                    page = by_path.get(str(grc))
                    if page is None:
                        failures.append(f"{grc}: GRC did not open it")
                        continue
                    self.main_window.current_page = page
                    flow_graph = page.flow_graph
                    self.main_window.vars.update_gui(flow_graph.blocks)   # flow_graph_update()
                    flow_graph.update()
                    png = (out_dir or grc.parent) / (grc.stem + ".png")
                    # FLOW_GRAPH_SCREEN_CAPTURE, with the file dialog's answer given:
                    Utils.make_screenshot(flow_graph, str(png), False)
                    errors = [f"{getattr(elem, 'name', elem)}: {msg}"
                              for elem, msg in flow_graph.iter_error_messages()]
                    results[png] = (errors, overlaps(flow_graph))
            except Exception as e:                                # noqa: BLE001 - reported below
                import traceback
                failures.append("".join(traceback.format_exception(e)))
            finally:
                self.quit()
            return False

    app = Capture([str(g) for g in grc_files], platform)
    app.run([])
    for f in failures:
        print(f"render_flowgraphs: {f}", file=sys.stderr)
    return results, failures


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    grc_files = [p.resolve() for p in (args.grc or sorted(EXAMPLES.glob("*.grc")))]
    for p in grc_files:
        if not p.is_file():
            die(f"no such flowgraph: {p}")
    if not args.use_display and os.environ.get(CHILD_ENV) != "1":
        reexec_under_xvfb(argv)
    check_gtk()
    out_dir = args.out_dir.resolve() if args.out_dir else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)

    results, failures = render(grc_files, out_dir)
    status = 2 if failures else 0
    for png, (errors, overlapping) in results.items():
        size = png.stat().st_size if png.is_file() else 0
        note = "" if size <= MAX_PNG_BYTES else f"  (over {MAX_PNG_BYTES // 1024} kB)"
        print(f"{png.relative_to(REPO) if png.is_relative_to(REPO) else png}: {size // 1024} kB{note}")
        for err in errors:
            print(f"    GRC error: {err}")
        for pair in overlapping:
            print(f"    layout: {pair} overlap (move them apart in GRC and rerun)")
        if errors:
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
