/* Cross-attention of a few query rows (a clip's beams) against one long, fixed set of keys and values (the encoder's
 * 1500 frames): the two products of a Whisper decoder step's cross-attention, for native_cross_attention.py.
 *
 * Why by hand: at 5 query rows, MKL's and oneDNN's sgemm (under torch's SDPA, matmul, bmm and linear alike) run
 * at ~10 GFLOP/s on the key matrix, a sixth of this core's sgemm peak, while the product is bound by reading the keys
 * and values once. Here a block of 16 frames' keys is stored contiguously (dim x 16, written once per window by
 * ``prepare``), so the keys stream in order and each 16-wide vector of a key block feeds every query row held in
 * registers. GCC/Clang vector extensions compile to AVX-512, AVX2 or NEON, whichever ``-march=native`` finds.
 * Single-threaded: one layer's product takes ~0.15 ms, less than torch's SDPA on two threads.
 */
#include <stddef.h>
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));
#define ROWS 5 /* query rows held in registers at once: Whisper's default beam count */
#define BLOCK 16

static inline v16 load(const float *p) { v16 v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, v16 v) { memcpy(p, &v, sizeof v); }

/* scores[g][r][t] = sum_d q[g][r][d] * keys(t)[d], for g < groups (clips x heads).
 * q: (groups, rows, dim); blocked: (groups, ceil(frames / 16), dim, 16), zero padded; scores: (groups, rows, frames). */
void cross_scores(const float *restrict q, const float *restrict blocked, float *restrict scores, int groups, int rows,
                  int frames, int dim) {
  int blocks = (frames + BLOCK - 1) / BLOCK;
  for (int g = 0; g < groups; g++) {
    const float *qg = q + (size_t)g * rows * dim, *kg = blocked + (size_t)g * blocks * dim * BLOCK;
    float *sg = scores + (size_t)g * rows * frames;
    for (int r0 = 0; r0 < rows; r0 += ROWS) {
      int n_rows = rows - r0 < ROWS ? rows - r0 : ROWS;
      for (int b = 0; b < blocks; b++) {
        const float *kb = kg + (size_t)b * dim * BLOCK;
        v16 acc[ROWS] = {0};
        for (int d = 0; d < dim; d++) {
          v16 k = load(kb + d * BLOCK);
          for (int r = 0; r < ROWS; r++)
            if (r < n_rows) acc[r] += qg[(r0 + r) * dim + d] * k;
        }
        int n = frames - b * BLOCK < BLOCK ? frames - b * BLOCK : BLOCK;
        for (int r = 0; r < n_rows; r++) memcpy(sg + (size_t)(r0 + r) * frames + b * BLOCK, &acc[r], n * sizeof(float));
      }
    }
  }
}

/* out[g][r][:] = sum_t p[g][r][t] * v[g][t][:], dim 64 (every Whisper size's head width).
 * p: (groups, rows, frames); v: (groups, frames, 64); out: (groups, rows, 64). */
void cross_weighted(const float *restrict p, const float *restrict v, float *restrict out, int groups, int rows,
                    int frames) {
  enum { DIM = 64 };
  for (int g = 0; g < groups; g++) {
    const float *pg = p + (size_t)g * rows * frames, *vg = v + (size_t)g * frames * DIM;
    float *og = out + (size_t)g * rows * DIM;
    for (int r0 = 0; r0 < rows; r0 += ROWS) {
      int n_rows = rows - r0 < ROWS ? rows - r0 : ROWS;
      v16 acc[ROWS][4];
      memset(acc, 0, sizeof acc);
      for (int t = 0; t < frames; t++) {
        const float *vt = vg + (size_t)t * DIM;
        v16 v0 = load(vt), v1 = load(vt + 16), v2 = load(vt + 32), v3 = load(vt + 48);
        for (int r = 0; r < ROWS; r++)
          if (r < n_rows) {
            float w = pg[(size_t)(r0 + r) * frames + t];
            acc[r][0] += w * v0, acc[r][1] += w * v1, acc[r][2] += w * v2, acc[r][3] += w * v3;
          }
      }
      for (int r = 0; r < n_rows; r++)
        for (int j = 0; j < 4; j++) store(og + (r0 + r) * DIM + 16 * j, acc[r][j]);
    }
  }
}
