/* gr-largesc: a small C interface to Opus 1.5's DRED RDO-VAE encoder, its LPCNet feature
 * analysis, the DRED decoder and the FARGAN vocoder (BSD-3-Clause, Xiph.Org and contributors),
 * for ctypes (python/largesc/core/codec/opus_dnn.py). Built by scripts/build_opus_dnn.sh against Debian's opus 1.5.2 orig tarball. */
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "cpu_support.h"
#include "lpcnet.h"
#include "lpcnet_private.h"
#include "dred_rdovae_enc.h"
#include "dred_rdovae_dec.h"
#include "dred_rdovae_constants.h"
#include "fargan.h"

int ld_sizes(int *latent_dim, int *state_dim, int *nb_features, int *frame_size) {
  *latent_dim = DRED_LATENT_DIM; *state_dim = DRED_STATE_DIM; *nb_features = NB_FEATURES;
  *frame_size = LPCNET_FRAME_SIZE;
  return 0;
}

typedef struct {
  LPCNetEncState lpc;
  RDOVAEEnc model;
  RDOVAEEncState rdo;
  int arch;
} LdEnc;

void *ld_enc_create(void) {
  LdEnc *e = calloc(1, sizeof(LdEnc));
  if (!e) return NULL;
  lpcnet_encoder_init(&e->lpc);
  if (init_rdovaeenc(&e->model, rdovaeenc_arrays) != 0) { free(e); return NULL; }
  e->arch = opus_select_arch();
  return e;
}

void ld_enc_destroy(void *h) { free(h); }

/* One DRED frame: 320 samples of 16 kHz PCM (int16 scale, as float) -> the two 10 ms LPCNet
 * feature frames (2 x 20), the RDO-VAE latent (21) and state (19) of this 20 ms step. */
int ld_enc_dframe(void *h, const float *pcm, float *features, float *latent, float *state) {
  LdEnc *e = h;
  float fb[2 * NB_TOTAL_FEATURES];
  float in[2 * DRED_NUM_FEATURES];
  float lat[DRED_LATENT_DIM + 8], st[DRED_STATE_DIM + 8];
  lpcnet_compute_single_frame_features_float(&e->lpc, pcm, fb, e->arch);
  lpcnet_compute_single_frame_features_float(&e->lpc, pcm + LPCNET_FRAME_SIZE, fb + NB_TOTAL_FEATURES, e->arch);
  memcpy(in, fb, DRED_NUM_FEATURES * sizeof(float));
  memcpy(in + DRED_NUM_FEATURES, fb + NB_TOTAL_FEATURES, DRED_NUM_FEATURES * sizeof(float));
  memcpy(features, in, 2 * NB_FEATURES * sizeof(float));
  dred_rdovae_encode_dframe(&e->rdo, &e->model, lat, st, in, e->arch);
  memcpy(latent, lat, DRED_LATENT_DIM * sizeof(float));
  memcpy(state, st, DRED_STATE_DIM * sizeof(float));
  return 0;
}

/* DRED's own decoder: from `state` (19) and n latents, newest first, to 4 n feature frames
 * (newest first, 20 each), as libopus decodes its redundancy. */
int ld_dec_all(const float *state, const float *latents, int n, float *features) {
  RDOVAEDec model;
  if (init_rdovaedec(&model, rdovaedec_arrays) != 0) return -1;
  DRED_rdovae_decode_all(&model, features, state, latents, n, opus_select_arch());
  return 0;
}

void *ld_fargan_create(void) {
  FARGANState *f = calloc(1, sizeof(FARGANState));
  if (!f) return NULL;
  fargan_init(f);
  return f;
}

void ld_fargan_destroy(void *h) { free(h); }

/* Start (or restart) synthesis: 320 samples of past PCM (float, [-1, 1]) and 5 feature frames. */
void ld_fargan_cont(void *h, const float *pcm0, const float *features5) { fargan_cont(h, pcm0, features5); }

/* One 10 ms frame: 20 features -> 160 samples of 16 kHz PCM ([-1, 1]). */
void ld_fargan_synth(void *h, const float *features, float *pcm) { fargan_synthesize(h, pcm, features); }
