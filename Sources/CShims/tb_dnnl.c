// Convolutions through oneDNN (Debian's libdnnl, the library PyTorch and TensorFlow call on CPUs).
//
// libdnnl.so.2 is opened at first use, not linked: without it trickbook runs on its own kernels,
// and `doctor` says so. One tb_dnnl_conv holds the three primitives of one convolution shape
// (forward, backward-data, backward-weights), created once and reused. Tensors reach it in plain
// NCHW / OIHW FP32; where oneDNN's chosen layout or type (BF16) differs, the arguments are
// reordered into the caller's workspace, which also holds oneDNN's scratchpad: no memory is
// allocated per call here.
#include "tb_dnnl.h"

#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TB_DNNL_FUNCS(X)                                                                          \
    X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_stream_wait) X(dnnl_memory_desc_init_by_tag) \
    X(dnnl_dilated_convolution_forward_desc_init) X(dnnl_dilated_convolution_backward_data_desc_init) \
    X(dnnl_dilated_convolution_backward_weights_desc_init) X(dnnl_primitive_desc_create)          \
    X(dnnl_primitive_desc_query_md) X(dnnl_primitive_desc_query) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_create)       \
    X(dnnl_primitive_destroy) X(dnnl_primitive_execute) X(dnnl_memory_create) X(dnnl_memory_destroy) \
    X(dnnl_memory_set_data_handle) X(dnnl_memory_desc_equal) X(dnnl_memory_desc_get_size)         \
    X(dnnl_reorder_primitive_desc_create) X(dnnl_get_effective_cpu_isa) X(dnnl_primitive_attr_create) \
    X(dnnl_primitive_attr_destroy) X(dnnl_primitive_attr_set_scratchpad_mode) X(dnnl_post_ops_create)  \
    X(dnnl_post_ops_destroy) X(dnnl_post_ops_append_eltwise) X(dnnl_primitive_attr_set_post_ops)

#define TB_DECLARE(name) static __typeof__(&name) p_##name;
TB_DNNL_FUNCS(TB_DECLARE)

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded = 0;
static char load_error[256] = "";
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;

static int load_threads = 0;

// libgomp's, found through libdnnl: a reorder of under 512 KiB (a layer's weights, or a small
// batch's activations) is made to run on the calling thread, since waking OpenMP's threads costs
// more than the copy: ResNet-20's 57 weight reorders a step took 54 us each on two threads, 4-19
// after. A reorder fixes its thread count when it is made, so the count is lowered meanwhile.
static void (*p_omp_set_num_threads)(int);
static int (*p_omp_get_max_threads)(void);
static void (*p_GOMP_parallel)(void (*)(void *), void *, unsigned, unsigned);
static int (*p_omp_get_thread_num)(void), (*p_omp_get_num_threads)(void);
enum { small_reorder_bytes = 512 << 10 };

static dnnl_status_t make_reorder(dnnl_primitive_t *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                  int small) {
    const int threads = small && p_omp_set_num_threads && p_omp_get_max_threads ? p_omp_get_max_threads() : 0;
    if (threads > 1) p_omp_set_num_threads(1);
    dnnl_primitive_desc_t rpd;
    dnnl_status_t s = p_dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL);
    if (s == dnnl_success) {
        s = p_dnnl_primitive_create(r, rpd);
        p_dnnl_primitive_desc_destroy(rpd);
    }
    if (threads > 1) p_omp_set_num_threads(threads);
    return s;
}

static void load(void) {
    // Every parallel loop of trickbook's runs on OpenMP's threads once this has loaded (see
    // tb_omp_perform), so they are left to spin a moment after each region: the next op finds
    // them awake. ResNet-20 trained at 1,570 images/s with our loops on libdispatch and OpenMP's
    // threads passive, 1,750-1,830 with one pool. The spin is cut from libgomp's 300,000 rounds to
    // 30,000 (the same speed here), so that threads of other processes, or a data loader's, are not
    // kept waiting as long. Both are read by libgomp when it loads; OMP_NUM_THREADS is the default
    // of every thread (omp_set_num_threads sets only the caller's).
    setenv("GOMP_SPINCOUNT", "30000", 0);
    if (load_threads > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", load_threads);
        setenv("OMP_NUM_THREADS", n, 1);
    }
    void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "libdnnl.so.2 could not be opened: %s (apt install libdnnl-dev)",
                 why ? why : "not found");
        return;
    }
#define TB_RESOLVE(name)                                                                       \
    if (!(p_##name = (__typeof__(&name))dlsym(lib, #name))) {                                  \
        snprintf(load_error, sizeof load_error, "libdnnl.so.2 has no %s (oneDNN 2.x needed)", #name); \
        return;                                                                                \
    }
    TB_DNNL_FUNCS(TB_RESOLVE)
    p_omp_set_num_threads = (void (*)(int))dlsym(lib, "omp_set_num_threads");
    p_omp_get_max_threads = (int (*)(void))dlsym(lib, "omp_get_max_threads");
    p_GOMP_parallel = (void (*)(void (*)(void *), void *, unsigned, unsigned))dlsym(lib, "GOMP_parallel");
    p_omp_get_thread_num = (int (*)(void))dlsym(lib, "omp_get_thread_num");
    p_omp_get_num_threads = (int (*)(void))dlsym(lib, "omp_get_num_threads");
    if (p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
        p_dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(load_error, sizeof load_error, "oneDNN could not make a CPU engine");
        return;
    }
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
}

typedef struct {
    long n;
    void *ctx;
    void (*body)(void *, long);
} tb_job;

static void run_job(void *p) {
    const tb_job *j = p;
    const long t = p_omp_get_thread_num(), k = p_omp_get_num_threads();
    for (long i = t; i < j->n; i += k) j->body(j->ctx, i);
}

int tb_omp_perform(long iterations, int threads, void *ctx, void (*body)(void *, long)) {
    if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE) || !p_GOMP_parallel || !p_omp_get_thread_num || !p_omp_get_num_threads)
        return 0;
    tb_job j = {iterations, ctx, body};
    p_GOMP_parallel(run_job, &j, (unsigned)(threads < 1 ? 1 : threads), 0);
    return 1;
}

int tb_dnnl_load(int threads) {
    load_threads = threads;
    pthread_once(&load_once, load);
    return loaded;
}

int tb_dnnl_available(void) {
    pthread_once(&load_once, load);
    return loaded;
}

const char *tb_dnnl_load_error(void) {
    pthread_once(&load_once, load);
    return load_error;
}


const char *tb_dnnl_isa(void) {
    if (!tb_dnnl_available()) return "none";
    switch (p_dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2: return "avx2";
    default: return "other";
    }
}

/// One argument of a primitive: the caller's plain FP32 buffer, and the layout the primitive
/// wants. When they differ, a reorder goes through a region of the workspace.
typedef struct {
    int arg;     // DNNL_ARG_*
    int slot;    // its place in the caller's list of buffers
    int output;  // written by the primitive (reordered back after it runs)
    dnnl_memory_t user, inner;
    dnnl_primitive_t reorder;  // user -> inner for inputs, inner -> user for outputs; NULL if same
    size_t offset;             // of `inner` in the workspace, when reordered
    int blocked16;             // inner is nChw16c FP32: a caller's buffer in that layout is used as it is
    int blocked16bf16;         // inner is nChw16c BF16: likewise, for a caller's BF16 buffer
    dnnl_memory_t from16;      // else, for a 4-D input: a caller's nChw16c FP32 buffer, and its reorder
    dnnl_primitive_t reorder16;
} tb_arg;

typedef struct {
    dnnl_primitive_t primitive;
    tb_arg args[4];
    int nargs;
    dnnl_memory_t scratch;
    size_t scratch_offset, workspace;
} tb_pass;

struct tb_dnnl_conv {
    pthread_mutex_t lock;  // a pass's memory objects are shared: one call at a time per shape
    tb_pass pass[3];
    int low;
};

static dnnl_status_t make_arg(tb_pass *p, int arg, int slot, int output, const dnnl_memory_desc_t *user_md,
                              const dnnl_primitive_desc_t pd, dnnl_query_t query, int index) {
    tb_arg *a = &p->args[p->nargs++];
    a->arg = arg;
    a->slot = slot;
    a->output = output;
    const dnnl_memory_desc_t *inner_md = p_dnnl_primitive_desc_query_md(pd, query, index);
    if (!inner_md) return dnnl_invalid_arguments;
    dnnl_status_t s = p_dnnl_memory_create(&a->user, user_md, engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) return s;
    if (p_dnnl_memory_desc_equal(user_md, inner_md)) {
        a->inner = a->user;
        return dnnl_success;
    }
    const int small = p_dnnl_memory_desc_get_size(inner_md) < small_reorder_bytes;
    dnnl_memory_desc_t b16, h16;
    if (user_md->ndims == 4 && user_md->dims[1] % 16 == 0 &&
        p_dnnl_memory_desc_init_by_tag(&b16, 4, user_md->dims, dnnl_f32, dnnl_nChw16c) == dnnl_success &&
        p_dnnl_memory_desc_init_by_tag(&h16, 4, user_md->dims, dnnl_bf16, dnnl_nChw16c) == dnnl_success) {
        a->blocked16 = p_dnnl_memory_desc_equal(&b16, inner_md);
        a->blocked16bf16 = p_dnnl_memory_desc_equal(&h16, inner_md);
        // BF16 inside: one reorder from (or, for an output, to) FP32 blocks
        if (!a->blocked16 && p_dnnl_memory_create(&a->from16, &b16, engine, DNNL_MEMORY_NONE) == dnnl_success &&
            (output ? make_reorder(&a->reorder16, inner_md, &b16, small) : make_reorder(&a->reorder16, &b16, inner_md, small))
                != dnnl_success)
            a->reorder16 = NULL;
    }
    a->offset = p->workspace;
    p->workspace += (p_dnnl_memory_desc_get_size(inner_md) + 63) & ~(size_t)63;
    if ((s = p_dnnl_memory_create(&a->inner, inner_md, engine, DNNL_MEMORY_NONE)) != dnnl_success) return s;
    return output ? make_reorder(&a->reorder, inner_md, user_md, small) : make_reorder(&a->reorder, user_md, inner_md, small);
}

static dnnl_status_t finish_pass(tb_pass *p, dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *smd = p_dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    p->scratch_offset = p->workspace;
    if (smd && p_dnnl_memory_desc_get_size(smd) > 0) {
        p->workspace += (p_dnnl_memory_desc_get_size(smd) + 63) & ~(size_t)63;
        dnnl_status_t s = p_dnnl_memory_create(&p->scratch, smd, engine, DNNL_MEMORY_NONE);
        if (s != dnnl_success) return s;
    }
    return p_dnnl_primitive_create(&p->primitive, pd);
}

static void destroy_pass(tb_pass *p) {
    for (int i = 0; i < p->nargs; i++) {
        tb_arg *a = &p->args[i];
        if (a->reorder) p_dnnl_primitive_destroy(a->reorder);
        if (a->reorder16) p_dnnl_primitive_destroy(a->reorder16);
        if (a->from16) p_dnnl_memory_destroy(a->from16);
        if (a->inner && a->inner != a->user) p_dnnl_memory_destroy(a->inner);
        if (a->user) p_dnnl_memory_destroy(a->user);
    }
    if (p->scratch) p_dnnl_memory_destroy(p->scratch);
    if (p->primitive) p_dnnl_primitive_destroy(p->primitive);
}

void tb_dnnl_conv_destroy(tb_dnnl_conv *c) {
    if (!c) return;
    for (int i = 0; i < 3; i++) destroy_pass(&c->pass[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void fail(char *err, size_t len, const char *what, dnnl_status_t s) {
    if (err && len) snprintf(err, len, "oneDNN could not make the %s (status %d)", what, (int)s);
}

// Whether oneDNN runs a primitive with a GEMM or reference fallback rather than a direct kernel.
// In BF16 that happens for shapes without 16-channel blocks (ResNet-D's 1- and 8-channel stem):
// there the BF16 backward-weights took 7-20 ms a call against 0.2-0.6 ms for FP32's direct kernel.
static int slow_impl(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (!pd || p_dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return 0;
    // "gemm:jit", "x64:gemm:jit", "ref:any"; not brgemm ("brg:..."), which is fast.
    return strncmp(impl, "gemm:", 5) == 0 || strstr(impl, ":gemm:") != NULL || strncmp(impl, "ref:", 4) == 0 ||
           strstr(impl, ":ref:") != NULL;
}

tb_dnnl_conv *tb_dnnl_conv_create(const tb_conv_shape *g, int low, int relu, char *err, size_t errlen) {
    if (!tb_dnnl_available()) {
        if (err && errlen) snprintf(err, errlen, "%s", load_error);
        return NULL;
    }
    tb_dnnl_conv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->low = low;
    const int64_t G = g->groups;
    dnnl_dims_t x_dims = {g->n, g->c, g->h, g->w}, y_dims = {g->n, g->o, g->oh, g->ow};
    dnnl_dims_t w_dims = {G, g->o / G, g->c / G, g->kh, g->kw}, b_dims = {g->o};
    dnnl_dims_t strides = {g->sh, g->sw}, dilates = {g->dh - 1, g->dw - 1};
    dnnl_dims_t pad_l = {g->ph, g->pw};
    // oneDNN's right padding makes the output size come out as ours (the last window may not reach it).
    dnnl_dims_t pad_r = {(g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1 - g->h - g->ph,
                         (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1 - g->w - g->pw};
    dnnl_memory_desc_t x_md, y_md, w_md, b_md, xa, ya, wa, ba;
    dnnl_data_type_t t = low ? dnnl_bf16 : dnnl_f32;
    p_dnnl_memory_desc_init_by_tag(&x_md, 4, x_dims, dnnl_f32, dnnl_nchw);
    p_dnnl_memory_desc_init_by_tag(&y_md, 4, y_dims, dnnl_f32, dnnl_nchw);
    p_dnnl_memory_desc_init_by_tag(&w_md, 5, w_dims, dnnl_f32, dnnl_goihw);
    p_dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_x);
    p_dnnl_memory_desc_init_by_tag(&xa, 4, x_dims, t, dnnl_format_tag_any);
    p_dnnl_memory_desc_init_by_tag(&ya, 4, y_dims, t, dnnl_format_tag_any);  // BF16 activations stay BF16
    p_dnnl_memory_desc_init_by_tag(&wa, 5, w_dims, t, dnnl_format_tag_any);
    p_dnnl_memory_desc_init_by_tag(&ba, 1, b_dims, dnnl_f32, dnnl_x);
    // The gradient of the output comes in as the input's type.
    dnnl_memory_desc_t dya;
    p_dnnl_memory_desc_init_by_tag(&dya, 4, y_dims, t, dnnl_format_tag_any);

    dnnl_primitive_attr_t attr, fattr = NULL;
    p_dnnl_primitive_attr_create(&attr);
    p_dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_status_t s;
    dnnl_convolution_desc_t fd, bdd, bwd;
    dnnl_primitive_desc_t fpd = NULL, bdpd = NULL, bwpd = NULL;
    if (relu) {  // inference only: the ReLU applied as the output is stored; without it, no primitive
        dnnl_post_ops_t ops = NULL;
        if ((s = p_dnnl_primitive_attr_create(&fattr)) != dnnl_success ||
            (s = p_dnnl_primitive_attr_set_scratchpad_mode(fattr, dnnl_scratchpad_mode_user)) != dnnl_success ||
            (s = p_dnnl_post_ops_create(&ops)) != dnnl_success ||
            (s = p_dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f)) != dnnl_success ||
            (s = p_dnnl_primitive_attr_set_post_ops(fattr, ops)) != dnnl_success) {
            if (ops) p_dnnl_post_ops_destroy(ops);
            fail(err, errlen, "convolution's ReLU post-op", s);
            goto bad;
        }
        p_dnnl_post_ops_destroy(ops);
    }

    const int bias = g->bias != 0;
    // forward_training even for the inference-only ReLU variant: for forward_inference oneDNN 2.6
    // picks its brgemm kernels, which ran ResNet-50's BF16 evaluation 30% slower here.
    s = p_dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &xa, &wa,
                                                     bias ? &ba : NULL, &ya, strides, dilates, pad_l, pad_r);
    if (s == dnnl_success) s = p_dnnl_primitive_desc_create(&fpd, &fd, relu ? fattr : attr, engine, NULL);
    if (s != dnnl_success) { fail(err, errlen, "forward convolution", s); goto bad; }
    tb_pass *f = &c->pass[0];
    if ((s = make_arg(f, DNNL_ARG_SRC, 0, 0, &x_md, fpd, dnnl_query_src_md, 0)) ||
        (s = make_arg(f, DNNL_ARG_WEIGHTS, 1, 0, &w_md, fpd, dnnl_query_weights_md, 0)) ||
        (bias && (s = make_arg(f, DNNL_ARG_BIAS, 2, 0, &b_md, fpd, dnnl_query_weights_md, 1))) ||
        (s = make_arg(f, DNNL_ARG_DST, 3, 1, &y_md, fpd, dnnl_query_dst_md, 0)) || (s = finish_pass(f, fpd))) {
        fail(err, errlen, "forward convolution's arguments", s);
        goto bad;
    }
    if (relu) goto done;  // no backward passes: a fused ReLU is for inference
    // The input's gradient in the input's type (BF16 gradients flow back through BF16 activations),
    // else in FP32 (then reordered).
    dnnl_memory_desc_t dxa;
    p_dnnl_memory_desc_init_by_tag(&dxa, 4, x_dims, dnnl_f32, dnnl_format_tag_any);
    s = p_dnnl_dilated_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &xa, &wa, &dya, strides,
                                                           dilates, pad_l, pad_r);
    if (s == dnnl_success) s = p_dnnl_primitive_desc_create(&bdpd, &bdd, attr, engine, fpd);
    if (s != dnnl_success && low) {
        s = p_dnnl_dilated_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &dxa, &wa, &dya, strides,
                                                               dilates, pad_l, pad_r);
        if (s == dnnl_success) s = p_dnnl_primitive_desc_create(&bdpd, &bdd, attr, engine, fpd);
    }
    if (s != dnnl_success) { fail(err, errlen, "backward-data convolution", s); goto bad; }
    tb_pass *bd = &c->pass[1];
    if ((s = make_arg(bd, DNNL_ARG_DIFF_DST, 0, 0, &y_md, bdpd, dnnl_query_diff_dst_md, 0)) ||
        (s = make_arg(bd, DNNL_ARG_WEIGHTS, 1, 0, &w_md, bdpd, dnnl_query_weights_md, 0)) ||
        (s = make_arg(bd, DNNL_ARG_DIFF_SRC, 2, 1, &x_md, bdpd, dnnl_query_diff_src_md, 0)) ||
        (s = finish_pass(bd, bdpd))) {
        fail(err, errlen, "backward-data convolution's arguments", s);
        goto bad;
    }
    dnnl_memory_desc_t dwa;
    p_dnnl_memory_desc_init_by_tag(&dwa, 5, w_dims, dnnl_f32, dnnl_format_tag_any);
    s = p_dnnl_dilated_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &xa, &dwa,
                                                              bias ? &ba : NULL, &dya, strides, dilates, pad_l, pad_r);
    if (s == dnnl_success) s = p_dnnl_primitive_desc_create(&bwpd, &bwd, attr, engine, fpd);
    if (s != dnnl_success) { fail(err, errlen, "backward-weights convolution", s); goto bad; }
    if (low && (slow_impl(fpd) || slow_impl(bdpd) || slow_impl(bwpd))) {
        if (err && errlen) snprintf(err, errlen, "oneDNN has no direct BF16 kernel for this shape");
        goto bad;
    }
    tb_pass *bw = &c->pass[2];
    if ((s = make_arg(bw, DNNL_ARG_SRC, 0, 0, &x_md, bwpd, dnnl_query_src_md, 0)) ||
        (s = make_arg(bw, DNNL_ARG_DIFF_DST, 1, 0, &y_md, bwpd, dnnl_query_diff_dst_md, 0)) ||
        (s = make_arg(bw, DNNL_ARG_DIFF_WEIGHTS, 2, 1, &w_md, bwpd, dnnl_query_diff_weights_md, 0)) ||
        (bias && (s = make_arg(bw, DNNL_ARG_DIFF_BIAS, 3, 1, &b_md, bwpd, dnnl_query_diff_weights_md, 1))) ||
        (s = finish_pass(bw, bwpd))) {
        fail(err, errlen, "backward-weights convolution's arguments", s);
        goto bad;
    }
done:
    p_dnnl_primitive_desc_destroy(fpd);
    if (bdpd) p_dnnl_primitive_desc_destroy(bdpd);
    if (bwpd) p_dnnl_primitive_desc_destroy(bwpd);
    p_dnnl_primitive_attr_destroy(attr);
    if (fattr) p_dnnl_primitive_attr_destroy(fattr);
    return c;
bad:
    if (fpd) p_dnnl_primitive_desc_destroy(fpd);
    if (bdpd) p_dnnl_primitive_desc_destroy(bdpd);
    if (bwpd) p_dnnl_primitive_desc_destroy(bwpd);
    p_dnnl_primitive_attr_destroy(attr);
    if (fattr) p_dnnl_primitive_attr_destroy(fattr);
    tb_dnnl_conv_destroy(c);
    return NULL;
}

size_t tb_dnnl_conv_workspace(const tb_dnnl_conv *c, int pass) {
    return pass >= 0 && pass < 3 ? c->pass[pass].workspace : 0;
}

/// Runs one pass: `buffers` are the caller's plain buffers in the order of the pass's arguments
/// (NULL for an argument not needed: a missing bias, an unwanted gradient), `workspace` holds at
/// least tb_dnnl_conv_workspace(pass) bytes.
int tb_dnnl_conv_blocked16(const tb_dnnl_conv *c, int pass, int slot) {
    if (pass < 0 || pass > 2) return 0;
    const tb_pass *p = &c->pass[pass];
    for (int i = 0; i < p->nargs; i++) {
        const tb_arg *a = &p->args[i];
        if (a->slot != slot) continue;
        return (a->blocked16 ? TB_DNNL_F32_AS_IS : 0) | (a->blocked16 || a->reorder16 ? TB_DNNL_F32 : 0) |
               (a->blocked16bf16 ? TB_DNNL_BF16_AS_IS : 0);
    }
    return 0;
}

static dnnl_status_t reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return p_dnnl_primitive_execute(r, stream, 2, args);
}

static int run_pass(tb_dnnl_conv *c, int which, void *const *buffers, unsigned held, unsigned bf16, void *workspace) {
    tb_pass *p = &c->pass[which];
    if (!p->primitive) return (int)dnnl_invalid_arguments;  // a pass not made (inference-only primitives)
    dnnl_exec_arg_t args[5];
    int n = 0;
    pthread_mutex_lock(&c->lock);
    pthread_mutex_lock(&stream_lock);
    dnnl_status_t s = dnnl_success;
    for (int i = 0; i < p->nargs && s == dnnl_success; i++) {
        tb_arg *a = &p->args[i];
        if (!buffers[a->slot]) continue;
        if ((bf16 >> a->slot & 1) && !((held >> a->slot & 1) && a->blocked16bf16)) {
            s = dnnl_invalid_arguments;  // BF16 blocks go only where the primitive takes them as they are
            break;
        }
        const int as_is = (bf16 >> a->slot & 1) ? a->blocked16bf16 : a->blocked16;
        if ((held >> a->slot & 1) && as_is) {  // already in the primitive's layout and type
            p_dnnl_memory_set_data_handle(a->inner, buffers[a->slot]);
            args[n++] = (dnnl_exec_arg_t){a->arg, a->inner};
            continue;
        }
        if ((held >> a->slot & 1) && a->reorder16) {  // FP32 blocks, reordered to or from the primitive's type
            p_dnnl_memory_set_data_handle(a->from16, buffers[a->slot]);
            p_dnnl_memory_set_data_handle(a->inner, (char *)workspace + a->offset);
            if (!a->output) s = reorder(a->reorder16, a->from16, a->inner);
            args[n++] = (dnnl_exec_arg_t){a->arg, a->inner};
            continue;
        }
        p_dnnl_memory_set_data_handle(a->user, buffers[a->slot]);
        if (a->inner != a->user) {
            p_dnnl_memory_set_data_handle(a->inner, (char *)workspace + a->offset);
            if (!a->output) s = reorder(a->reorder, a->user, a->inner);
        }
        args[n++] = (dnnl_exec_arg_t){a->arg, a->inner};
    }
    if (p->scratch) {
        p_dnnl_memory_set_data_handle(p->scratch, (char *)workspace + p->scratch_offset);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    }
    if (s == dnnl_success) s = p_dnnl_primitive_execute(p->primitive, stream, n, args);
    for (int i = 0; i < p->nargs && s == dnnl_success; i++) {
        tb_arg *a = &p->args[i];
        const int as_is = (bf16 >> a->slot & 1) ? a->blocked16bf16 : a->blocked16;
        if (!buffers[a->slot] || !a->output || a->inner == a->user || ((held >> a->slot & 1) && as_is)) continue;
        s = (held >> a->slot & 1) && a->reorder16 ? reorder(a->reorder16, a->inner, a->from16)
                                                  : reorder(a->reorder, a->inner, a->user);
    }
    if (s == dnnl_success) s = p_dnnl_stream_wait(stream);
    pthread_mutex_unlock(&stream_lock);
    pthread_mutex_unlock(&c->lock);
    return s == dnnl_success ? 0 : (int)s;
}

int tb_dnnl_conv_forward(tb_dnnl_conv *c, const void *x, const float *w, const float *b, void *y, unsigned held,
                         unsigned bf16, void *ws) {
    void *buffers[4] = {(void *)x, (void *)w, (void *)b, y};
    return run_pass(c, 0, buffers, held, bf16, ws);
}

int tb_dnnl_conv_backward_data(tb_dnnl_conv *c, const void *dy, const float *w, void *dx, unsigned held,
                               unsigned bf16, void *ws) {
    void *buffers[3] = {(void *)dy, (void *)w, dx};
    return run_pass(c, 1, buffers, held, bf16, ws);
}

int tb_dnnl_conv_backward_weights(tb_dnnl_conv *c, const void *x, const void *dy, float *dw, float *db, unsigned held,
                                  unsigned bf16, void *ws) {
    void *buffers[4] = {(void *)x, (void *)dy, dw, db};
    return run_pass(c, 2, buffers, held, bf16, ws);
}
