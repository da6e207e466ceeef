// MPI (Open MPI or MPICH), opened at run time: see tb_mpi.c.
#ifndef TB_MPI_H
#define TB_MPI_H

#include <stddef.h>
#include <stdint.h>

/// Whether this process was started by an MPI launcher (mpirun, mpiexec, srun): its environment
/// names a rank. Nothing is opened.
int tb_mpi_launched(void);
/// Whether trickbook was built with MPI's header (the shim knows the library's handles).
int tb_mpi_built_with_headers(void);
/// The MPI library this build opens ("libmpi.so.40", Open MPI's), and which family ("Open MPI", "MPICH").
const char *tb_mpi_library(void);
const char *tb_mpi_family(void);
/// Opens the library (without starting MPI): whether it is there; if not, why (tb_mpi_error).
int tb_mpi_probe(void);

/// Opens the library and starts MPI (MPI_Init_thread, serialized calls; errors returned, not
/// fatal). 0, or -1 with the reason in tb_mpi_error. Only the first call starts it.
int tb_mpi_init(void);
/// The last failure's message (this thread's calls are serialized: one buffer).
const char *tb_mpi_error(void);
/// The library's own version line (MPI_Get_library_version), after tb_mpi_init.
const char *tb_mpi_version(void);

int tb_mpi_rank(void);
int tb_mpi_size(void);

/// Each returns 0, or -1 with the reason in tb_mpi_error. Counts above INT_MAX are split.
/// Sums across ranks, in place.
int tb_mpi_allreduce_f32(float *buf, int64_t count);
int tb_mpi_allreduce_f64(double *buf, int64_t count);
/// Rank `root`'s bytes to every rank.
int tb_mpi_bcast(void *buf, int64_t bytes, int root);
/// Every rank's `count` words, rank by rank, into all (count × size words).
int tb_mpi_allgather_u64(const uint64_t *mine, int64_t count, uint64_t *all);
int tb_mpi_barrier(void);

/// A sum across ranks, in place, started now and finished by tb_mpi_wait (count ≤ INT_MAX):
/// a request number ≥ 0, or -1.
int64_t tb_mpi_iallreduce_f32(float *buf, int64_t count);
/// Lets MPI move the started sums on: how many of them are done.
int tb_mpi_progress(void);
/// Waits for request `r`; 0, or -1.
int tb_mpi_wait(int64_t r);

/// Stops every rank (MPI_Abort): the launcher ends the job.
void tb_mpi_abort(int code);
int tb_mpi_finalize(void);

#endif
