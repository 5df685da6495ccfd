/*
 * omp_regions.c -- where a fit's time goes between its OpenMP regions, on
 * machines without hardware counters (VMs): an LD_PRELOAD shim around
 * libgomp's GOMP_parallel that counts TSC cycles per region and thread.
 *
 *   gcc -O2 -shared -fPIC -fopenmp bench/tools/omp_regions.c -o /tmp/omp_regions.so -ldl
 *   LD_PRELOAD=/tmp/omp_regions.so python my_fit.py     # report on stderr at exit
 *
 * Regions are keyed by their outlined function and by their position in
 * the step: the count restarts at every call of the first function seen (the
 * batch gather, in fnn_train_epoch).  Per key: calls, mean wall cycles from
 * fork to join, each of the first two threads' busy cycles inside the body
 * (their difference is the imbalance the faster thread waits out), and the
 * serial cycles spent since the previous region ended (element-wise passes
 * below the threading threshold, the output layer, Python; before position
 * 0, also the steps the thread policy ran on one thread).  `where` is
 * library+offset: on a build installed with `-C install.strip=false`,
 * `addr2line -f -e <library> <offset>` names the function (`nm -n` the
 * nearest one for target_clones copies).  Regions under 0.5% of
 * the total are left out.  Not thread-safe for regions started from several
 * threads at once (fastnn starts them from one).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <x86intrin.h>

#define MAX_KEYS 256
typedef struct {
    void *fn;
    int pos;
    long calls;
    double wall, busy[2], serial;
} region;
static region regions[MAX_KEYS];
static int n_regions, pos;
static void *first_fn;
static uint64_t last_end;

typedef struct {
    void (*fn)(void *);
    void *data;
    uint64_t in[2], out[2];
} call;

static void body(void *p)
{
    call *c = p;
    const int t = omp_get_thread_num();
    const uint64_t t0 = __rdtsc();
    c->fn(c->data);
    if (t < 2) {
        c->in[t] = t0;
        c->out[t] = __rdtsc();
    }
}

void GOMP_parallel(void (*fn)(void *), void *data, unsigned n_threads, unsigned flags)
{
    static void (*real)(void (*)(void *), void *, unsigned, unsigned);
    if (real == NULL)
        real = (void (*)(void (*)(void *), void *, unsigned, unsigned))dlsym(RTLD_NEXT,
                                                                              "GOMP_parallel");
    call c = {fn, data, {0, 0}, {0, 0}};
    const uint64_t t0 = __rdtsc();
    real(body, &c, n_threads, flags);
    const uint64_t t1 = __rdtsc();
    if (first_fn == NULL)
        first_fn = (void *)fn;
    pos = (void *)fn == first_fn ? 0 : pos + 1;
    int i = 0;
    while (i < n_regions && !(regions[i].fn == (void *)fn && regions[i].pos == pos)) i++;
    if (i == n_regions) {
        if (n_regions == MAX_KEYS)
            return;
        regions[n_regions++] = (region){(void *)fn, pos, 0, 0, {0, 0}, 0};
    }
    region *r = &regions[i];
    r->calls++;
    r->wall += (double)(t1 - t0);
    if (last_end != 0 && t0 - last_end < 10000000) /* not across fits */
        r->serial += (double)(t0 - last_end);
    last_end = t1;
    for (int t = 0; t < 2; t++)
        if (c.in[t] != 0)
            r->busy[t] += (double)(c.out[t] - c.in[t]);
}

__attribute__((destructor)) static void report(void)
{
    double total = 0;
    for (int i = 0; i < n_regions; i++) total += regions[i].wall + regions[i].serial;
    if (total == 0)
        return;
    fprintf(stderr, "pos %-44s %8s %9s %9s %9s %9s %6s\n", "where", "calls", "wall", "busy0",
            "busy1", "serial", "share");
    for (int i = 0; i < n_regions; i++) {
        const region *r = &regions[i];
        if (r->wall + r->serial < 0.005 * total)
            continue;
        Dl_info di;
        char where[64] = "?";
        if (dladdr(r->fn, &di) && di.dli_fname != NULL) {
            const char *base = di.dli_fname, *s = base;
            for (; *s; s++)
                if (*s == '/')
                    base = s + 1;
            snprintf(where, sizeof where, "%.30s+%#lx", base,
                     (unsigned long)((char *)r->fn - (char *)di.dli_fbase));
        }
        const double n = (double)r->calls;
        fprintf(stderr, "%3d %-44s %8ld %9.0f %9.0f %9.0f %9.0f %5.1f%%\n", r->pos, where,
                r->calls, r->wall / n, r->busy[0] / n, r->busy[1] / n, r->serial / n,
                100 * (r->wall + r->serial) / total);
    }
    fprintf(stderr, "(cycles per call of the TSC; share of all region and serial cycles)\n");
}
