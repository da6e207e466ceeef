// Run-time choice of AVX-512 for the C loops: each is written once, inlined into a copy built
// for AVX-512 (TB_AVX512) and a baseline copy, and TB_HAS_AVX512() picks one per call.
#ifndef TB_CPU_H
#define TB_CPU_H

#define TB_ALWAYS static inline __attribute__((always_inline))

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define TB_AVX512 __attribute__((target("avx512f")))
#define TB_HAS_AVX512() (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"))
#else
#define TB_AVX512
#define TB_HAS_AVX512() 0
#endif

#endif
