/* cpu_dispatch.h — which of a routine's CPU-specific kernels runs. The fp32, bf16 and int8 GEMMs
 * each list their kernels best first (the last one, plain C, runs anywhere); the first that this
 * build has and this CPU can run is used, unless an environment variable (DBT_KERNEL,
 * DBT_KERNEL_BF16, DBT_KERNEL_INT8) or a test (dbt_gemm*_use_kernel) names another. */
#ifndef DBT_CPU_DISPATCH_H
#define DBT_CPU_DISPATCH_H

/* CPU features a kernel needs (bits). */
enum {
    DBT_CPU_AVX2 = 1 << 0,
    DBT_CPU_FMA = 1 << 1,
    DBT_CPU_AVX512 = 1 << 2,      /* F, BW, VL and DQ */
    DBT_CPU_AVX512_BF16 = 1 << 3,
    DBT_CPU_AVX512_VNNI = 1 << 4,
    DBT_CPU_AVX_VNNI = 1 << 5,    /* the VEX-encoded VNNI of CPUs without AVX-512 */
};

/* 1 when this CPU has every feature in `needs` (0 on other architectures unless needs is 0). */
int dbt_cpu_has(unsigned needs);

typedef struct {
    const char *name;   /* what the environment variable says to pick it */
    const void *kernel; /* NULL: not in this build */
    unsigned needs;     /* DBT_CPU_* bits */
} dbt_kernel_option;

/* The option called `name` if this build has it and this CPU runs it, else NULL; with name NULL
 * or "", the first of options[0..n) that runs. */
const void *dbt_kernel_find(const dbt_kernel_option *options, int n, const char *name);

/* The kernel to use from now on: the one getenv(env_var) names, or the best when it is unset;
 * when it names one this CPU or build lacks, a warning and the best. */
const void *dbt_kernel_from_env(const dbt_kernel_option *options, int n, const char *env_var);

#endif
