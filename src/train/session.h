/* A session: everything built from a config (data, model, optimizer, clip
 * stage, buffers), shared by train, eval and sample. Private to src/train. */
#ifndef CN_SESSION_H
#define CN_SESSION_H

#include "train/trainer.h"
#include "io/safetensors.h"

#define CN_LOSS_RING 100

typedef struct {
    cn_config cfg;
    cn_data data;
    cn_loss_kind loss;
    cn_paramset ps;
    cn_model *model;
    cn_optim *optim;
    cn_schedule sched;
    cn_clip *clip;
    cn_batcher batcher;
    int batcher_ready;
    cn_graph g;                 /* training graph (its arena is sized by the first step) */
    cn_graph ge;                /* evaluation graph */
    cn_rng drop_rng;            /* dropout masks */
    cn_model_output out;
    float *bx, *by;             /* training batch [T,B,F], targets */
    int32_t *bl;
    int eval_batch;
    float *ex, *ey;             /* evaluation batch */
    int32_t *el;
    int32_t *vocab_ids;         /* text: vocabulary as int32 for the checkpoint */
    /* run statistics (saved in checkpoints so a resumed run's summary is exact) */
    long long step;
    long long clipped_steps, skipped_steps, nonfinite_steps, diverged_at_step;
    double max_norm_pre;      /* largest L2 pre-clip norm that was a number (inf counts); NaN until one was */
    double loss_ring[CN_LOSS_RING];
    long long loss_ring_n;      /* logged losses so far (ring index = n % size) */
    double wall_s;              /* training time of earlier sessions of this run */
    /* data-parallel training (cn_session_distribute): this rank's slice of every global batch */
    int dist_rank, dist_size;   /* 0, 1 when training alone */
    int slice_lo, slice_n;      /* examples [slice_lo, slice_lo + slice_n) of each batch */
    float *dist_grads;          /* [dist_size * shard]: every rank's gradient for this rank's shard */
    int *shard_n, *shard_at;    /* [dist_size]: each rank's shard of the flat gradient (counts, offsets) */
    int *recv_n, *recv_at;      /* [dist_size]: where each rank's piece of this rank's shard lands */
    double *dist_loss;          /* [dist_size]: every rank's loss */
    double *dist_weight;        /* [dist_size]: each rank's share of the batch, b_r / B */
    int allow_thread_change;    /* cn_session_resume accepts another "threads" than the checkpoint's */
    int resumed_threads;        /* the thread count of the checkpoint resumed (0: none) */
} cn_session;

/* "threads": "auto" (cfg.threads 0) made a count, after cn_session_resume and cn_session_distribute: 1 for a
 * rank of a data-parallel run (ranks share nodes); else a resumed run's checkpoint count; else
 * CLIPNN_AUTO_THREADS (cn_auto_threads_env; `compare` sets it to 1 for runs that share the machine) if set;
 * else cn_session_auto_threads. A bad CLIPNN_AUTO_THREADS is an error even where it is not used. The count
 * goes into cfg.threads and the resolved config. An explicit count stays as it is. */
cn_status cn_session_resolve_threads(cn_session *s);
/* The measured default for one process on this machine (docs/performance.md, "1 vs 2 threads"): 2 when the
 * process may use 2 or more cores (cn_usable_cores) and the model has a recurrent layer of hidden >= 128 with at least 16
 * rows (examples of this rank's batch), or a linear layer of batch x in x out >= 128 x 512 x 512
 * multiply-adds; else 1, where the second thread gains little over its hand-offs. */
int cn_session_auto_threads(const cn_session *s);

/* Loads and validates everything; nothing is written. */
cn_status cn_session_open(cn_session *s, const char *config_path, char *const *sets, int n_sets);
void cn_session_close(cn_session *s);
/* Model tensors from a safetensors file into the parameters (init_from, eval, sample): each parameter
 * present as F32 with exactly its shape, no tensor outside the reserved prefixes (optim., clip., data.,
 * train.) that is not a parameter, a text model's "data.vocab" (if present) I32 [V] equal to the
 * config's; the other reserved items are not read. Nothing is copied unless all of it is valid. */
cn_status cn_session_load_params(cn_session *s, const cn_st_file *f, const char *file);
/* Restores params, optimizer, clip, data order, RNG and run statistics from a checkpoint of this run
 * (--resume). The file is untrusted: every item is checked first (metadata format, version, config,
 * step, rng, wall_s; exactly the items this session writes, each with its dtype and shape; the run
 * counters against the step; the optimizer, clip and data state against the counters), then each module
 * checks the values of its own state as it loads it. Errors name `file` and the item; CN_ERR_FORMAT for
 * a malformed state, CN_ERR_ARG for a checkpoint of another config or one beyond train.steps. After an
 * error the session must only be closed. */
cn_status cn_session_resume_file(cn_session *s, const cn_st_file *f, const char *file);
cn_status cn_session_resume(cn_session *s, const char *checkpoint);
cn_status cn_session_save(cn_session *s, const char *path);
/* The model's forward pass on x ([T, rows, features] time-major, or [rows, features] when T = 0) in graph g,
 * which is reset first. training = 1: dropout on, the graph tapes for backward and train.bptt applies;
 * 0: evaluation (no dropout, no tape, full sequence). The one forward of train, eval, predict and sample. */
cn_status cn_session_forward(cn_session *s, cn_graph *g, float *x, int T, int rows, int features, int training,
                             cn_var **pred);
/* One optimizer step: zero grads; grad_accum x (next batch, forward, loss,
 * backward); divide by grad_accum; clip stage; optimizer step at the
 * scheduled lr unless the stage says skip or stop; the run statistics above.
 * Allocates nothing once the first step has sized the graph's arena. */
cn_status cn_session_step(cn_session *s, double *loss, int *epoch, double *lr, cn_clip_action *action);
/* Makes this session one of `size` data-parallel replicas (rank `rank`): each step it computes the
 * gradient of its contiguous slice of the global batch (uneven when batch_size % size != 0), then every
 * rank combines all slices' gradients in rank order, each weighted by its share of the batch, so every
 * rank holds the same global mean gradient before the clip stage. CN_ERR_ARG when the batch has fewer
 * examples than there are ranks. size 1: nothing changes. */
cn_status cn_session_distribute(cn_session *s, int rank, int size);
/* Mean loss and metric over a dataset, in evaluation mode. */
cn_status cn_session_evaluate(cn_session *s, const cn_dataset *ds, double *loss, double *metric);
const char *cn_session_metric_name(const cn_session *s);

#endif
