/* The distributed layer (see dist.h). */
#include "dist/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CN_HAVE_MPI
#include <mpi.h>
#endif

static int g_active, g_rank, g_size = 1;

/* The launcher's word for how many ranks the job has: Open MPI's mpirun, PMI (Slurm srun, MPICH) and
 * PMIx. 0 when none is set (not launched by an MPI launcher). */
static long launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", NULL};
    const char *off = getenv("CLIPNN_DIST");
    if (off && !strcmp(off, "0")) return 0;   /* forced single-process: compare's children */
    for (const char *const *v = vars; *v; v++) {
        const char *s = getenv(*v);
        if (s && *s) {
            char *end;
            long n = strtol(s, &end, 10);
            if (!*end && n >= 1) return n;
        }
    }
    return 0;
}

#ifdef CN_HAVE_MPI

static cn_status mpi_fail(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return cn_error(CN_ERR_IO, "MPI %s failed on rank %d of %d: %s", what, g_rank, g_size, msg);
}

cn_status cn_dist_init(int *argc, char ***argv)
{
    if (g_active) return CN_OK;
    if (launcher_size() < 1) return CN_OK;
    int rc = MPI_Init(argc, argv);
    if (rc != MPI_SUCCESS) return cn_error(CN_ERR_IO, "MPI_Init failed (error %d)", rc);
    /* errors come back as codes: the program reports them and ends the job with cn_dist_abort */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_active = 1;
    return CN_OK;
}

void cn_dist_finalize(void)
{
    if (!g_active) return;
    MPI_Finalize();
    g_active = 0;
    g_rank = 0;
    g_size = 1;
}

void cn_dist_abort(int code)
{
    if (g_active) MPI_Abort(MPI_COMM_WORLD, code);
}

/* MPI counts are int: larger buffers go in pieces of at most INT_MAX elements. */
static cn_status gather(const void *mine, void *all, size_t n, MPI_Datatype t, size_t esz)
{
    if (!g_active) {
        if (all != mine) memmove(all, mine, n * esz);
        return CN_OK;
    }
    if (n > (size_t)INT_MAX) return cn_error(CN_ERR_ARG, "MPI allgather: %zu elements is more than one call takes", n);
    int rc = MPI_Allgather(mine, (int)n, t, all, (int)n, t, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CN_OK : mpi_fail(rc, "Allgather");
}

cn_status cn_dist_allgather_f32(const float *mine, float *all, size_t n) { return gather(mine, all, n, MPI_FLOAT, sizeof(float)); }
cn_status cn_dist_allgather_f64(const double *mine, double *all, size_t n) { return gather(mine, all, n, MPI_DOUBLE, sizeof(double)); }

cn_status cn_dist_alltoallv_f32(const float *send, const int *scounts, const int *sdispls, float *recv,
                                const int *rcounts, const int *rdispls)
{
    if (!g_active) {
        memmove(recv + rdispls[0], send + sdispls[0], sizeof(float) * (size_t)scounts[0]);
        return CN_OK;
    }
    int rc = MPI_Alltoallv(send, scounts, sdispls, MPI_FLOAT, recv, rcounts, rdispls, MPI_FLOAT, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CN_OK : mpi_fail(rc, "Alltoallv");
}

cn_status cn_dist_allgatherv_f32(float *buf, const int *counts, const int *displs)
{
    if (!g_active) return CN_OK;
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CN_OK : mpi_fail(rc, "Allgatherv");
}

cn_status cn_dist_max_int(int *v, size_t n)
{
    if (!g_active) return CN_OK;
    if (n > (size_t)INT_MAX) return cn_error(CN_ERR_ARG, "MPI allreduce: too many elements");
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CN_OK : mpi_fail(rc, "Allreduce");
}

cn_status cn_dist_bcast(void *buf, size_t bytes, int root)
{
    if (!g_active) return CN_OK;
    if (bytes > (size_t)INT_MAX) return cn_error(CN_ERR_ARG, "MPI broadcast: %zu bytes is more than one call takes", bytes);
    int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CN_OK : mpi_fail(rc, "Bcast");
}

cn_status cn_dist_barrier(void)
{
    if (!g_active) return CN_OK;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CN_OK : mpi_fail(rc, "Barrier");
}

#else   /* no MPI in this build: one process */

cn_status cn_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    long n = launcher_size();
    if (n > 1)
        return cn_error(CN_ERR_ARG, "launched as one of %ld MPI ranks, but this clipnn was built without MPI "
                        "(install libopenmpi-dev, e.g. with `make deps`, and rebuild)", n);
    return CN_OK;
}

void cn_dist_finalize(void) {}
void cn_dist_abort(int code) { (void)code; }

cn_status cn_dist_allgather_f32(const float *mine, float *all, size_t n)
{
    if (all != mine) memmove(all, mine, n * sizeof *all);
    return CN_OK;
}

cn_status cn_dist_allgather_f64(const double *mine, double *all, size_t n)
{
    if (all != mine) memmove(all, mine, n * sizeof *all);
    return CN_OK;
}

cn_status cn_dist_alltoallv_f32(const float *send, const int *scounts, const int *sdispls, float *recv,
                                const int *rcounts, const int *rdispls)
{
    (void)rcounts;
    memmove(recv + rdispls[0], send + sdispls[0], sizeof(float) * (size_t)scounts[0]);
    return CN_OK;
}

cn_status cn_dist_allgatherv_f32(float *buf, const int *counts, const int *displs)
{
    (void)buf; (void)counts; (void)displs;
    return CN_OK;
}

cn_status cn_dist_max_int(int *v, size_t n) { (void)v; (void)n; return CN_OK; }
cn_status cn_dist_bcast(void *buf, size_t bytes, int root) { (void)buf; (void)bytes; (void)root; return CN_OK; }
cn_status cn_dist_barrier(void) { return CN_OK; }

#endif

int cn_dist_rank(void) { return g_rank; }
int cn_dist_size(void) { return g_size; }
int cn_dist_active(void) { return g_active; }
