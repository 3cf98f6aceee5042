#!/usr/bin/env bash
# Prints the stamp of the inputs that define the venv (used by install_env.sh and ./gr-largesc).
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "$(cat "$REPO/constraints.txt" "$REPO/requirements.txt" "$REPO/pyproject.toml" | sha256sum | cut -c1-16) extras=${LARGESC_EXTRAS:-}"
