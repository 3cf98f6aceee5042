#!/usr/bin/env bash
# Debian packages for building the `mini` training corpus and for evaluating the codec
# (docs/models/mini.md). Idempotent: apt-get skips what is already installed. Run as root.
# Python packages: .venv/bin/python -m pip install -c constraints.txt --use-pep517 -r requirements-train.txt
set -euo pipefail
PKGS=(
  # real speech (Debian main): Allison (en), es-mx, fr-ca, it, ru prompts, plus extra voices
  asterisk-core-sounds-en asterisk-core-sounds-en-wav
  asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav
  asterisk-prompt-es-co asterisk-prompt-fr-armelle asterisk-prompt-it-menardi-wav
  # synthetic speech
  espeak-ng espeak-ng-data flite festival
  festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-italp16k festvox-itapc16k festvox-ru
  festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-suopuhe-lj festvox-suopuhe-mv
  # tools and baselines
  sox libsox-fmt-mp3 codec2 libcodec2-dev
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_train_deps: all ${#PKGS[@]} packages present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends "${missing[@]}"
