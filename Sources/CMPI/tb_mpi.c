// MPI through its C library, opened at run time as oneDNN is (tb_dnnl.c): trickbook builds and
// runs without MPI, and a binary built with it still starts where MPI is not installed.
//
// MPI's handles are macros Swift cannot import. In Open MPI they are the addresses of the
// library's globals (MPI_COMM_WORLD is &ompi_mpi_comm_world), so with the library opened by
// dlopen they are looked up by name; in MPICH they are integer constants and used as they are.
// The header is the system's (libopenmpi-dev or libmpich-dev); without it this file builds the
// same functions, each saying that trickbook was built without MPI.
#include "tb_mpi.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char error_text[512] = "";

int tb_mpi_launched(void) {
    // Open MPI's mpirun, MPICH's Hydra (PMI), PMIx launchers (srun, prterun).
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (getenv(names[i])) return 1;
    return 0;
}

const char *tb_mpi_error(void) { return error_text; }

#if __has_include(<mpi/mpi.h>)
#include <mpi/mpi.h>
#define TB_HAVE_MPI 1
#elif __has_include(<mpi.h>)
#include <mpi.h>
#define TB_HAVE_MPI 1
#else
#define TB_HAVE_MPI 0
#endif

#if TB_HAVE_MPI

#ifdef OPEN_MPI
static const char *library_name = "libmpi.so.40";
static const char *family = "Open MPI";
#else
static const char *library_name = "libmpi.so.12";
static const char *family = "MPICH";
#endif

#define TB_MPI_FUNCS(X)                                                                                   \
    X(MPI_Init_thread) X(MPI_Initialized) X(MPI_Finalized) X(MPI_Finalize) X(MPI_Comm_rank) X(MPI_Comm_size) \
    X(MPI_Allreduce) X(MPI_Iallreduce) X(MPI_Bcast) X(MPI_Allgather) X(MPI_Barrier) X(MPI_Wait) X(MPI_Test)   \
    X(MPI_Abort) X(MPI_Error_string) X(MPI_Comm_set_errhandler) X(MPI_Get_library_version)

#define TB_DECLARE(name) static __typeof__(&name) p_##name;
TB_MPI_FUNCS(TB_DECLARE)

static void *lib = NULL;
static int started = 0;
static char version_text[MPI_MAX_LIBRARY_VERSION_STRING + 1] = "";
static MPI_Comm world;
static MPI_Datatype f32, f64, u64, byte;
static MPI_Op sum;
static MPI_Errhandler errors_return;
static MPI_Request request_null;

/// The started sums: request numbers index these lists. A slot is taken from the start of a sum
/// until its wait (a test may have finished the request before), then reused.
static MPI_Request *requests = NULL;
static unsigned char *taken = NULL;
static int64_t request_count = 0, request_capacity = 0;

int tb_mpi_built_with_headers(void) { return 1; }
const char *tb_mpi_library(void) { return library_name; }
const char *tb_mpi_family(void) { return family; }

int tb_mpi_probe(void) {
    if (lib) return 1;
    // RTLD_GLOBAL: Open MPI's own plugins, which it opens in turn, look for its symbols there.
    lib = dlopen(library_name, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(error_text, sizeof error_text, "%s could not be opened: %s (apt install %s)", library_name,
                 why ? why : "not found", family[0] == 'O' ? "libopenmpi-dev openmpi-bin" : "libmpich-dev mpich");
        return 0;
    }
#define TB_RESOLVE(name)                                                                                  \
    if (!(p_##name = (__typeof__(&name))dlsym(lib, #name))) {                                             \
        snprintf(error_text, sizeof error_text, "%s has no %s: not the MPI trickbook was built for", library_name, #name); \
        dlclose(lib);                                                                                     \
        lib = NULL;                                                                                       \
        return 0;                                                                                         \
    }
    TB_MPI_FUNCS(TB_RESOLVE)
#ifdef OPEN_MPI
    // The handles are the addresses of the library's predefined objects.
#define TB_HANDLE(var, type, symbol)                                                                      \
    if (!(var = (type)dlsym(lib, symbol))) {                                                              \
        snprintf(error_text, sizeof error_text, "%s has no %s: not Open MPI", library_name, symbol);      \
        dlclose(lib);                                                                                     \
        lib = NULL;                                                                                       \
        return 0;                                                                                         \
    }
    TB_HANDLE(world, MPI_Comm, "ompi_mpi_comm_world")
    TB_HANDLE(f32, MPI_Datatype, "ompi_mpi_float")
    TB_HANDLE(f64, MPI_Datatype, "ompi_mpi_double")
    TB_HANDLE(u64, MPI_Datatype, "ompi_mpi_uint64_t")
    TB_HANDLE(byte, MPI_Datatype, "ompi_mpi_byte")
    TB_HANDLE(sum, MPI_Op, "ompi_mpi_op_sum")
    TB_HANDLE(errors_return, MPI_Errhandler, "ompi_mpi_errors_return")
    TB_HANDLE(request_null, MPI_Request, "ompi_request_null")
#else
    world = MPI_COMM_WORLD;
    f32 = MPI_FLOAT;
    f64 = MPI_DOUBLE;
    u64 = MPI_UINT64_T;
    byte = MPI_BYTE;
    sum = MPI_SUM;
    errors_return = MPI_ERRORS_RETURN;
    request_null = MPI_REQUEST_NULL;
#endif
    return 1;
}

/// Whether `code` is success; if not, its message (prefixed by what failed) into error_text.
static int ok(int code, const char *what) {
    if (code == MPI_SUCCESS) return 1;
    char text[MPI_MAX_ERROR_STRING + 1] = "";
    int length = 0;
    if (p_MPI_Error_string) p_MPI_Error_string(code, text, &length);
    snprintf(error_text, sizeof error_text, "%s failed: %s", what, text[0] ? text : "unknown MPI error");
    return 0;
}

static int need_started(const char *what) {
    if (started) return 1;
    snprintf(error_text, sizeof error_text, "%s: MPI has not been started", what);
    return 0;
}

int tb_mpi_init(void) {
    if (started) return 0;
    if (!tb_mpi_probe()) return -1;
    int already = 0, provided = 0;
    if (!ok(p_MPI_Initialized(&already), "MPI_Initialized")) return -1;
    if (!already && !ok(p_MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread")) return -1;
    if (!already && provided < MPI_THREAD_SERIALIZED) {
        snprintf(error_text, sizeof error_text, "this MPI gives thread level %d; trickbook needs MPI_THREAD_SERIALIZED", provided);
        return -1;
    }
    // Errors come back as codes, so that trickbook can say what failed (and then stop every rank).
    if (!ok(p_MPI_Comm_set_errhandler(world, errors_return), "MPI_Comm_set_errhandler")) return -1;
    int length = 0;
    if (p_MPI_Get_library_version(version_text, &length) != MPI_SUCCESS) version_text[0] = 0;
    char *newline = strchr(version_text, '\n');
    if (newline) *newline = 0;
    started = 1;
    return 0;
}

const char *tb_mpi_version(void) { return version_text; }

int tb_mpi_rank(void) {
    int r = 0;
    if (started) p_MPI_Comm_rank(world, &r);
    return r;
}

int tb_mpi_size(void) {
    int n = 1;
    if (started) p_MPI_Comm_size(world, &n);
    return n;
}

/// The sum of `count` items of `type` (each `size` bytes) across ranks, in place, in pieces of at most INT_MAX.
static int allreduce(void *buf, int64_t count, MPI_Datatype type, size_t size) {
    if (!need_started("allreduce")) return -1;
    char *p = buf;
    while (count > 0) {
        const int n = count > INT_MAX ? INT_MAX : (int)count;
        if (!ok(p_MPI_Allreduce(MPI_IN_PLACE, p, n, type, sum, world), "MPI_Allreduce")) return -1;
        p += (size_t)n * size;
        count -= n;
    }
    return 0;
}

int tb_mpi_allreduce_f32(float *buf, int64_t count) { return allreduce(buf, count, f32, sizeof(float)); }
int tb_mpi_allreduce_f64(double *buf, int64_t count) { return allreduce(buf, count, f64, sizeof(double)); }

int tb_mpi_bcast(void *buf, int64_t bytes, int root) {
    if (!need_started("broadcast")) return -1;
    char *p = buf;
    while (bytes > 0) {
        const int n = bytes > INT_MAX ? INT_MAX : (int)bytes;
        if (!ok(p_MPI_Bcast(p, n, byte, root, world), "MPI_Bcast")) return -1;
        p += n;
        bytes -= n;
    }
    return 0;
}

int tb_mpi_allgather_u64(const uint64_t *mine, int64_t count, uint64_t *all) {
    if (!need_started("allgather")) return -1;
    if (count > INT_MAX) {
        snprintf(error_text, sizeof error_text, "allgather of %lld words: at most %d", (long long)count, INT_MAX);
        return -1;
    }
    return ok(p_MPI_Allgather(mine, (int)count, u64, all, (int)count, u64, world), "MPI_Allgather") ? 0 : -1;
}

int tb_mpi_barrier(void) {
    if (!need_started("barrier")) return -1;
    return ok(p_MPI_Barrier(world), "MPI_Barrier") ? 0 : -1;
}

int64_t tb_mpi_iallreduce_f32(float *buf, int64_t count) {
    if (!need_started("allreduce")) return -1;
    if (count > INT_MAX) {
        snprintf(error_text, sizeof error_text, "a bucket of %lld values: at most %d", (long long)count, INT_MAX);
        return -1;
    }
    int64_t slot = 0;
    while (slot < request_count && taken[slot]) slot++;
    if (slot == request_count) {
        if (request_count == request_capacity) {
            const int64_t capacity = request_capacity ? 2 * request_capacity : 64;
            MPI_Request *grown = realloc(requests, (size_t)capacity * sizeof *grown);
            if (grown) requests = grown;
            unsigned char *marks = grown ? realloc(taken, (size_t)capacity) : NULL;
            if (!marks) {
                snprintf(error_text, sizeof error_text, "no memory for %lld MPI requests", (long long)capacity);
                return -1;
            }
            taken = marks;
            request_capacity = capacity;
        }
        request_count++;
    }
    requests[slot] = request_null;
    taken[slot] = 0;
    if (!ok(p_MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, f32, sum, world, &requests[slot]), "MPI_Iallreduce")) return -1;
    taken[slot] = 1;
    return slot;
}

int tb_mpi_progress(void) {
    int done = 0;
    for (int64_t i = 0; i < request_count; i++) {
        if (!taken[i]) continue;
        if (requests[i] == request_null) { done++; continue; }
        int flag = 0;
        // A test drives the library's progress; a request it finishes keeps its slot until its wait.
        if (p_MPI_Test(&requests[i], &flag, MPI_STATUS_IGNORE) == MPI_SUCCESS && flag) done++;
    }
    return done;
}

int tb_mpi_wait(int64_t r) {
    if (r < 0 || r >= request_count || !taken[r]) {
        snprintf(error_text, sizeof error_text, "no MPI request %lld", (long long)r);
        return -1;
    }
    taken[r] = 0;
    if (requests[r] == request_null) return 0;  // finished by a test
    return ok(p_MPI_Wait(&requests[r], MPI_STATUS_IGNORE), "MPI_Wait") ? 0 : -1;
}

void tb_mpi_abort(int code) {
    if (started) p_MPI_Abort(world, code);
    exit(code);
}

int tb_mpi_finalize(void) {
    if (!started) return 0;
    int done = 0;
    if (p_MPI_Finalized(&done) == MPI_SUCCESS && done) return 0;
    started = 0;
    return ok(p_MPI_Finalize(), "MPI_Finalize") ? 0 : -1;
}

#else  // built without MPI's header

static int missing(void) {
    snprintf(error_text, sizeof error_text,
             "trickbook was built without MPI's header (apt install libopenmpi-dev openmpi-bin, then rebuild)");
    return -1;
}

int tb_mpi_built_with_headers(void) { return 0; }
const char *tb_mpi_library(void) { return "none"; }
const char *tb_mpi_family(void) { return "none"; }
int tb_mpi_probe(void) { missing(); return 0; }
int tb_mpi_init(void) { return missing(); }
const char *tb_mpi_version(void) { return ""; }
int tb_mpi_rank(void) { return 0; }
int tb_mpi_size(void) { return 1; }
int tb_mpi_allreduce_f32(float *buf, int64_t count) { (void)buf; (void)count; return missing(); }
int tb_mpi_allreduce_f64(double *buf, int64_t count) { (void)buf; (void)count; return missing(); }
int tb_mpi_bcast(void *buf, int64_t bytes, int root) { (void)buf; (void)bytes; (void)root; return missing(); }
int tb_mpi_allgather_u64(const uint64_t *mine, int64_t count, uint64_t *all) { (void)mine; (void)count; (void)all; return missing(); }
int tb_mpi_barrier(void) { return missing(); }
int64_t tb_mpi_iallreduce_f32(float *buf, int64_t count) { (void)buf; (void)count; return missing(); }
int tb_mpi_progress(void) { return 0; }
int tb_mpi_wait(int64_t r) { (void)r; return missing(); }
void tb_mpi_abort(int code) { exit(code); }
int tb_mpi_finalize(void) { return 0; }

#endif
