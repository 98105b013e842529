/* The distributed layer: the few collective operations data-parallel training and the distributed
 * compare need, over MPI when clipnn is built with it (CN_HAVE_MPI) and launched by mpirun/srun, and a
 * one-process implementation otherwise (rank 0 of 1, every collective a copy), so the library and the
 * program work unchanged without MPI.
 *
 * Nothing here starts MPI by itself: cn_dist_init does, and only when an MPI launcher started the
 * process (its environment has OMPI_COMM_WORLD_SIZE, PMIX_SIZE or PMI_SIZE) and CLIPNN_DIST is not "0".
 * A plain `clipnn train` never initialises MPI.
 *
 * Every collective here is deterministic: the order in which contributions are combined is fixed by
 * rank, never left to the MPI library (MPI_SUM may combine in any order), so the same run on the same
 * number of ranks gives bit-identical results. */
#ifndef CN_DIST_H
#define CN_DIST_H

#include <stddef.h>
#include "tensor/core.h"

/* Starts MPI when started by an MPI launcher (see above). CN_ERR_ARG when the launcher says several
 * ranks but this build has no MPI (one rank: it runs as one process). Safe to call once per process; cn_dist_finalize ends it. */
cn_status cn_dist_init(int *argc, char ***argv);
/* Ends MPI cleanly (every rank must call it; no-op when MPI was not started). */
void cn_dist_finalize(void);
/* Ends the whole job at once with `code` (MPI_Abort): for an error on some ranks only, where the others
 * would wait forever in a collective. Returns only when MPI is not running. */
void cn_dist_abort(int code);

int cn_dist_rank(void);     /* 0 .. size-1; 0 without MPI */
int cn_dist_size(void);     /* ranks in the job; 1 without MPI */
int cn_dist_active(void);   /* 1 when MPI was started (even with one rank) */

/* all[r*n .. r*n+n-1] = rank r's `mine`, on every rank (MPI_Allgather). */
cn_status cn_dist_allgather_f32(const float *mine, float *all, size_t n);
cn_status cn_dist_allgather_f64(const double *mine, double *all, size_t n);
/* Personalised exchange (MPI_Alltoallv): rank r's send[sdispls[q] .. +scounts[q]) lands in rank q's
 * recv[rdispls[r] .. +rcounts[r]). Counts and displacements in floats, one per rank. */
cn_status cn_dist_alltoallv_f32(const float *send, const int *scounts, const int *sdispls, float *recv,
                                const int *rcounts, const int *rdispls);
/* In place (MPI_Allgatherv): every rank's buf[displs[r] .. +counts[r]) is rank r's block afterwards. */
cn_status cn_dist_allgatherv_f32(float *buf, const int *counts, const int *displs);
/* v[i] = max over ranks of v[i], on every rank (integer max is order-independent). */
cn_status cn_dist_max_int(int *v, size_t n);
/* buf from `root` to every rank. */
cn_status cn_dist_bcast(void *buf, size_t bytes, int root);
cn_status cn_dist_barrier(void);

#endif
