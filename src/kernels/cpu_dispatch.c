/* cpu_dispatch.c — run-time choice of a kernel by CPU features (see cpu_dispatch.h). */
#include "cpu_dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

/* AVX-VNNI is CPUID leaf 7, sub-leaf 1, EAX bit 4 (GCC 12's __builtin_cpu_supports does not
 * report it); the AVX2 check (which also checks that the OS saves the registers) goes with it. */
static int has_avx_vnni(void) {
    unsigned eax, ebx, ecx, edx;
    return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && ((eax >> 4) & 1);
}

int dbt_cpu_has(unsigned needs) {
    __builtin_cpu_init();
    if ((needs & DBT_CPU_AVX2) && !__builtin_cpu_supports("avx2")) return 0;
    if ((needs & DBT_CPU_FMA) && !__builtin_cpu_supports("fma")) return 0;
    if ((needs & (DBT_CPU_AVX512 | DBT_CPU_AVX512_BF16 | DBT_CPU_AVX512_VNNI)) &&
        !(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")))
        return 0;
    if ((needs & DBT_CPU_AVX512_BF16) && !__builtin_cpu_supports("avx512bf16")) return 0;
    if ((needs & DBT_CPU_AVX512_VNNI) && !__builtin_cpu_supports("avx512vnni")) return 0;
    if ((needs & DBT_CPU_AVX_VNNI) && !(__builtin_cpu_supports("avx2") && has_avx_vnni())) return 0;
    return 1;
}
#else
int dbt_cpu_has(unsigned needs) { return needs == 0; }
#endif

const void *dbt_kernel_find(const dbt_kernel_option *options, int n, const char *name) {
    for (int i = 0; i < n; i++) {
        const dbt_kernel_option *o = &options[i];
        if (name && *name && strcmp(name, o->name) != 0) continue;
        if (o->kernel && dbt_cpu_has(o->needs)) return o->kernel;
        if (name && *name) return NULL; /* named, but not runnable here */
    }
    return NULL;
}

const void *dbt_kernel_from_env(const dbt_kernel_option *options, int n, const char *env_var) {
    const char *env = getenv(env_var);
    const void *k = dbt_kernel_find(options, n, env);
    if (!k) {
        fprintf(stderr, "distilbert: %s=%s is not available on this CPU/build; using the default\n", env_var, env);
        k = dbt_kernel_find(options, n, NULL);
    }
    return k;
}
