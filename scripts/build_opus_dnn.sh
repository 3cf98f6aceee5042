#!/usr/bin/env bash
# Builds liblargesc_opus_dnn.so: Opus 1.5's DRED RDO-VAE encoder, LPCNet feature analysis and
# FARGAN vocoder (BSD-3-Clause, Xiph.Org and contributors; weights inside the source) behind
# native/largesc_opus_dnn.c, for the `mini` codec. Usage: scripts/build_opus_dnn.sh OUT_DIR
# The source is Debian trixie's opus_1.5.2.orig.tar.gz, fetched with a private apt
# configuration (the system's apt sources are left alone); nothing of Opus is committed here.
# Idempotent: does nothing when OUT_DIR/liblargesc_opus_dnn.so is newer than the shim source.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:?usage: build_opus_dnn.sh OUT_DIR}")"
LIB="$OUT/liblargesc_opus_dnn.so"
SRC="$REPO/native/largesc_opus_dnn.c"
log() { printf '[opus-dnn %4ds] %s\n' "$SECONDS" "$*"; }
if [ -f "$LIB" ] && [ "$LIB" -nt "$SRC" ]; then log "up to date: $LIB"; exit 0; fi
WORK="$OUT/build"
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial"
cd "$WORK"
if [ ! -f opus_1.5.2.orig.tar.gz ]; then
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > apt/sources.list
  A=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::Cache=$WORK/apt/cache" -o Dir::State::status=/var/lib/dpkg/status)
  log "fetching opus 1.5.2 source (Debian trixie)"
  apt-get "${A[@]}" -qq update
  apt-get "${A[@]}" -qq source --download-only opus >/dev/null \
    || { echo "build_opus_dnn: could not fetch Debian trixie's opus source" >&2; exit 1; }
fi
echo "65c1d2f78b9f2fb20082c38cbe47c951ad5839345876e46941612ee87f9a7ce1  opus_1.5.2.orig.tar.gz" | sha256sum -c --quiet
[ -d opus-1.5.2 ] || tar xzf opus_1.5.2.orig.tar.gz
cd opus-1.5.2
if [ ! -f .libs/libopus.a ]; then
  log "building libopus with DRED, deep PLC and FARGAN (about a minute)"
  ./configure -q --enable-dred --enable-deep-plc --enable-osce --disable-shared --with-pic --disable-doc \
    --disable-extra-programs CFLAGS="-O2 -fPIC" >/dev/null
  make -s -j"$(nproc)" >/dev/null
fi
O="$PWD"
gcc -O2 -fPIC -shared -o "$LIB.tmp" "$SRC" -I"$O" -I"$O/include" -I"$O/celt" -I"$O/silk" -I"$O/silk/float" \
  -I"$O/dnn" -DHAVE_CONFIG_H -Wl,--whole-archive "$O/.libs/libopus.a" -Wl,--no-whole-archive -lm
mv "$LIB.tmp" "$LIB"
cp COPYING "$OUT/OPUS_COPYING"
log "built $LIB (Opus licence: $OUT/OPUS_COPYING)"
