/* clipnn data: built-in tasks, file datasets (npy, csv, text) and batching.
 *
 * A dataset is held whole in memory, example-major: x [n, T, F] (or [n, F]),
 * targets [n, (T,) D] floats or [n, (T)] int32 class labels. The batcher copies
 * examples into caller buffers in the layout the layers want: TIME-MAJOR, so a
 * sequence batch is [T, B, F] and the slice at step t is contiguous.
 *
 * Config ("data" object, docs/config.md). Keys common to every kind:
 *   kind     required: adding | temporal_order | xor | spirals | sine | npy | csv | text
 *   shuffle  true: a new seeded permutation each epoch; false: file order, wrapping at the end
 * Built-in tasks (all also take train_size >= 1 and test_size >= 0; 0 = no test set):
 *   adding          seq_len (30, >= 2); train_size 10000, test_size 1000.
 *                   x [T, 2]: channel 0 a value ~ U[0,1), channel 1 a marker that is 1 at exactly two
 *                   steps, one drawn uniformly from the first half [0, T/2) and one from the second half
 *                   [T/2, T). Target (float, D = 1) = the MEAN of the two marked values. (Hochreiter &
 *                   Schmidhuber 1997 / Pascanu et al. 2013 / Le et al. 2015 use the sum or other scalings;
 *                   the mean has variance 1/24, the "predict the mean" baseline MSE 0.0417 of the README's demo.)
 *   temporal_order  seq_len (50, >= 10); train_size 10000, test_size 1000.
 *                   Hochreiter & Schmidhuber 1997 experiment 6a at a fixed length T. Alphabet of 8 symbols,
 *                   one-hot inputs x [T, 8]: 0-3 distractors a,b,c,d; 4 = X; 5 = Y; 6 = B (start); 7 = E
 *                   (end). Step 0 is B, step T-1 is E, every other step a random distractor except two
 *                   relevant steps t1 ~ U[T/10, 2T/10] and t2 ~ U[5T/10, 6T/10] (integer division; the
 *                   paper's 10-20 and 50-60 of a length-100 sequence), each X or Y with prob. 1/2.
 *                   Class label (one per sequence, 4 classes): 2*[first is Y] + [second is Y], i.e.
 *                   XX = 0, XY = 1, YX = 2, YY = 3.
 *   xor             target_kind ("float" | "class", default "float"), noise (0, >= 0);
 *                   train_size 1000, test_size 200. x [2] = two bits each 0/1 with prob. 1/2, plus
 *                   N(0, noise^2) on each input; target = a XOR b: "float" -> y [1] in {0, 1} (for
 *                   bce_with_logits or mse), "class" -> label in {0, 1}, 2 classes (cross_entropy).
 *   spirals         classes (2, >= 2), noise (0.1, >= 0); train_size 1000, test_size 500.
 *                   Example i has class c = i mod classes (balanced, interleaved); with u ~ U[0,1):
 *                   radius r = u, angle = 2*pi*c/classes + 2*pi*u (one full turn per arm);
 *                   x = (r cos(angle), r sin(angle)) + N(0, noise^2) per coordinate. Class labels.
 *   sine            seq_len (50, >= 2); train_size 10000, test_size 1000.
 *                   Next-value prediction: s(t) = sin(w t + phi), w ~ U[0.1, 0.5) rad/step,
 *                   phi ~ U[0, 2 pi); x [T, 1] = s(0..T-1), y [T, 1] = s(1..T) (one target per step).
 *   The train set and the test set are drawn from two separate streams derived from the run's seed, so the
 *   test set does not change with train_size (and neither depends on the model's initialisation stream).
 * Files (relative paths resolve against the config file's directory):
 *   npy   x, y (required), test_x, test_y (both or neither; without them there is no test set).
 *         NumPy .npy format 1.0/2.0/3.0, C order, little-endian. x: '<f4' or '<f8' (converted to float32),
 *         [N, F] or [N, T, F]. y: '<f4'/'<f8' float targets [N] (D = 1), [N, D], or [N, T, D] per step (x
 *         must be [N, T, F] with the same T); or '<i4'/'<i8' class labels >= 0, [N] or [N, T] per step.
 *         n_classes = max label + 1 over train and test. Non-finite floats are rejected.
 *   csv   path, target (column name), test_path (optional, null = no test set), target_kind ("float" |
 *         "class", default "float"). Comma-separated, first row is the header, every other non-blank row
 *         decimal numbers only ([+-]digits[.digits][e[+-]digits]; hex floats, inf and nan rejected). Lines
 *         end in LF, CRLF or a lone CR. Features = all other columns in file order.
 *         "class" targets must be integers >= 0; n_classes = max label + 1. The test file must have the
 *         same header.
 *   text  path, seq_len (64, >= 1), test_fraction (0.1, in [0, 1)). Character-level language modelling
 *         over BYTES (any encoding; NUL bytes are rejected as "binary"). Vocabulary = the sorted distinct
 *         bytes of the whole file; id = rank in it. The last round(test_fraction * L) bytes of the file
 *         form the test part, the rest the train part; each part is cut into consecutive NON-overlapping
 *         windows: example k has x = bytes[kT .. kT+T-1] (ids as floats, features 1) and labels =
 *         bytes[kT+1 .. kT+T] (the next byte at every step). A part of L' bytes gives floor((L'-1)/T)
 *         examples; trailing bytes that do not fill a window are unused. */
#ifndef CN_DATA_H
#define CN_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>
#include "../tensor/core.h"
#include "../tensor/rng.h"
#include "../tensor/state.h"

typedef enum { CN_TARGET_FLOAT = 0, CN_TARGET_CLASS } cn_target_kind;

typedef struct {
    int n;             /* examples */
    int seq_len;       /* T for sequence inputs, 0 for [N,F] inputs */
    int features;      /* F per example (per step for sequences); 1 for token ids */
    int ids;           /* 1: x holds token ids as floats (text) */
    float *x;          /* [n, T, F] or [n, F], example-major */
    cn_target_kind target_kind;
    int target_seq;    /* 1: one target per time step ([n,T,...]) */
    int target_dim;    /* floats per example (or per step) for float targets; 1 for class labels */
    float *y;          /* float targets [n, (T,) target_dim] or NULL */
    int32_t *labels;   /* class labels [n] or [n, T] or NULL */
    int n_classes;     /* class targets: max label + 1, or the task's class count; 0 for float targets */
} cn_dataset;

typedef struct {
    cn_dataset train, test;        /* test.n == 0 when there is no test set */
    char *vocab; int vocab_size;   /* text: the bytes in id order (NUL-terminated); else NULL/0 */
    char kind[16];
    int shuffle;                   /* data.shuffle, resolved */
} cn_data;

/* Parses the "data" object (mutated: defaults filled in) at JSON path `path` (normally "data") and loads or
 * generates the data. Files resolve against base_dir (the config file's directory; NULL or "" = the current
 * directory) unless absolute. seed: the run's seed. Errors (CN_ERR_ARG for config, CN_ERR_IO / CN_ERR_FORMAT
 * for files) name the JSON path, or the file and line (csv) / the file and what is wrong (npy).
 * On error *out is left empty (nothing to free). */
cn_status cn_data_load(cJSON *data_json, const char *path, uint64_t seed, const char *base_dir, cn_data *out);
void cn_data_free(cn_data *d);
void cn_dataset_free(cn_dataset *ds);

/* ---- NumPy .npy reader (used by kind "npy"; public for tools and tests) ---- */
typedef struct {
    int ndim;                 /* 1..8 */
    int64_t shape[8];
    char kind;                /* 'f' float or 'i' signed integer */
    int itemsize;             /* 4 or 8 */
    size_t numel;
    void *data;               /* numel * itemsize bytes, little-endian, C order */
} cn_npy;
/* Reads a whole .npy file. Errors name the file and what is wrong (bad magic, version, header dict,
 * unsupported dtype such as '>f4' or '<c8', fortran_order, truncated data). */
cn_status cn_npy_read(const char *file, cn_npy *out);
void cn_npy_free(cn_npy *a);

/* ---- Batching ----
 * Buffers are time-major: x [T, B, F] (or [B, F]); float targets [T, B, D] (target_seq) or [B, D];
 * labels [T*B] (time-major, labels[t*B + b]) or [B]. */
typedef struct {
    const cn_dataset *ds;     /* not owned; must outlive the batcher */
    int batch;
    int shuffle;
    int32_t *perm;            /* [n]: order of the current epoch */
    int64_t pos;              /* next index into perm, 0..n (n = epoch used up; wrap happens lazily) */
    int64_t epoch;            /* epoch of perm, from 1 */
    cn_rng rng;               /* draws the per-epoch permutations (only cn_rng_shuffle: no spare normal) */
} cn_batcher;

/* batch >= 1 (may exceed n: a batch then spans epochs); ds->n >= 1. With shuffle the first epoch is
 * already a permutation. seed: the run's seed (mixed with a fixed tag so it is its own stream). */
cn_status cn_batcher_init(cn_batcher *b, const cn_dataset *ds, int batch, int shuffle, uint64_t seed);
/* Fills the next batch. Pass y for float targets or labels for class targets (the other may be NULL).
 * At the end of the data it wraps (the batch continues with the next epoch, reshuffled if shuffle).
 * *epoch (may be NULL) = the epoch of the batch's first example, from 1. Never allocates. */
cn_status cn_batcher_next(cn_batcher *b, float *x, float *y, int32_t *labels, int *epoch);
size_t cn_batch_x_size(const cn_dataset *ds, int batch);   /* floats */
size_t cn_batch_y_size(const cn_dataset *ds, int batch);   /* floats (float targets) or labels */
/* Examples start .. start+count-1 in file order, laid out as a batch of B = count (so the time-major
 * stride is count, not the training batch size). For whole-set evaluation; never allocates. */
cn_status cn_batch_range(const cn_dataset *ds, int start, int count, float *x, float *y, int32_t *labels);
/* State items (views into b, valid while b lives and is not advanced): "data.perm" I32 [n],
 * "data.pos" I64 scalar, "data.epoch" I64 scalar, "data.rng" I64 [4] (the xoshiro state words). */
cn_status cn_batcher_save_state(const cn_batcher *b, cn_state *out);
/* Restores from those items after checking them all (exact dtypes and shapes, perm a permutation of
 * 0..n-1 and the identity when not shuffling, pos and epoch ranges, a non-zero RNG state); on error
 * (CN_ERR_FORMAT naming the item) the batcher is unchanged. */
cn_status cn_batcher_load_state(cn_batcher *b, const cn_state *in);
void cn_batcher_free(cn_batcher *b);

#endif
