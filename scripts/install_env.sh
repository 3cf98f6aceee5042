#!/usr/bin/env bash
# Idempotent environment installer for gr-largesc on Debian 12 (bookworm), CPU or CUDA.
# Usage: sudo scripts/install_env.sh [VENV_DIR]    (default: .venv beside this repo)
# Extras: LARGESC_EXTRAS="eval" scripts/install_env.sh   adds the evaluation dependencies
# (`./gr-largesc test` adds the extras the tests need, TEST_EXTRAS there, by itself).
# Every step is skipped when already done; a stamp file records the inputs of the pip steps.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(realpath -m "${1:-$REPO/.venv}")"
EXTRAS="${LARGESC_EXTRAS:-}"
export DEBIAN_FRONTEND=noninteractive
log() { printf '[install %4ds] %s\n' "$SECONDS" "$*"; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# 1. Debian packages. 'gnuradio' carries the Python bindings, grcc and gr_modtool;
#    gnuradio-dev + cmake are for the CMake install route. No recommends (they add 2 GB), so the
#    GTK 3 typelib that gnuradio-companion needs is named explicitly.
APT_PKGS=(gnuradio gnuradio-dev cmake python3-venv python3-dev build-essential gir1.2-gtk-3.0 python3-gi-cairo)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt: all present"
fi

# 2. venv on Debian's python (the GNU Radio bindings are built for it), seeing system packages.
if [ ! -x "$VENV/bin/python" ]; then
  log "venv: creating $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip -q --disable-pip-version-check)

# 3. pip steps, skipped when the stamp matches the inputs.
STAMP="$VENV/.largesc-install-stamp"
want="$("$REPO/scripts/env_stamp.sh")"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  log "pip: up to date"
else
  log "pip: torch (CPU wheel first, so nothing pulls a CUDA build)"
  "${PIP[@]}" install -c "$REPO/constraints.txt" torch==2.13.0
  log "pip: runtime dependencies"
  "${PIP[@]}" install -c "$REPO/constraints.txt" -r "$REPO/requirements.txt"
  log "pip: mini codec runtime (pyworld, pysptk: the default profile's vocoder; built with --use-pep517)"
  "${PIP[@]}" install --use-pep517 -c "$REPO/constraints.txt" -r "$REPO/requirements-mini.txt"
  log "pip: moshi --no-deps (its metadata would pull torch 2.9 + CUDA and numpy 2)"
  "${PIP[@]}" install --no-deps -c "$REPO/constraints.txt" moshi==0.2.13
  if [ -n "$EXTRAS" ]; then
    for extra in ${EXTRAS//,/ }; do
      req="$REPO/requirements-$extra.txt"
      [ -f "$req" ] || { echo "unknown extra '$extra' (no $req)" >&2; exit 2; }
      log "pip: extra '$extra'"
      "${PIP[@]}" install --use-pep517 -c "$REPO/constraints.txt" -r "$req"
    done
  fi
  log "pip: gr-largesc (editable)"
  "${PIP[@]}" install --no-deps -e "$REPO"
  echo "$want" > "$STAMP"
fi

# 4. Opus 1.5's speech DNNs (DRED encoder, FARGAN vocoder) for the mini codec v2: built from
#    Debian's opus source into the venv (skipped when already built; about a minute).
log "opus-dnn: $VENV/lib/gr-largesc"
"$REPO/scripts/build_opus_dnn.sh" "$VENV/lib/gr-largesc" \
  || log "opus-dnn: not built (the experimental mini v2 codec needs it; everything else works without it)"

log "check"
( cd /tmp && HF_HUB_OFFLINE=1 NO_TORCH_COMPILE=1 "$PY" - <<'PYEOF'
import numpy, torch, moshi, peft
from gnuradio import gr, largesc
assert numpy.__version__.startswith("1."), "numpy %s would break GNU Radio" % numpy.__version__
print("gnuradio", gr.version(), "| numpy", numpy.__version__, "| torch", torch.__version__, "| moshi", moshi.__version__)
PYEOF
)
log "done: $VENV"
