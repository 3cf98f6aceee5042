#!/usr/bin/env bash
# Prints the stamp of the inputs that define the venv (used by install_env.sh and ./gr-largesc):
# the pins, the requirements, pyproject, and the requirement files of the extras asked for.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
files=("$REPO/constraints.txt" "$REPO/requirements.txt" "$REPO/requirements-mini.txt" "$REPO/pyproject.toml")
for extra in ${LARGESC_EXTRAS//,/ }; do files+=("$REPO/requirements-$extra.txt"); done
echo "$(cat "${files[@]}" 2>/dev/null | sha256sum | cut -c1-16) extras=${LARGESC_EXTRAS:-}"
