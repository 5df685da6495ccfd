/*
 * blas_threads.c -- the thread-count controls of the BLAS library that
 * provides the gemm the core calls.
 *
 * The core parallelizes large products itself, so BLAS must run
 * single-threaded meanwhile.  The controls are looked up in the very library
 * that defines the gemm function pointer handed in (dladdr), so the right
 * library is held even when several BLAS builds are loaded (numpy's and
 * scipy's OpenBLAS, for instance).  threadpoolctl could not be relied on for
 * this: with OpenBLAS 0.3.31, a limit set from a worker thread after one set
 * and restored from the main thread did not take effect.
 */
#define _GNU_SOURCE /* dladdr */
#include <stddef.h>

#include "fastnn.h"

#if defined(__linux__) || defined(__APPLE__)
#include <dlfcn.h>

static void *find_symbol(void *lib, const char *const *names)
{
    for (; *names != NULL; names++) {
        void *fn = dlsym(lib, *names);
        if (fn != NULL)
            return fn;
    }
    return NULL;
}

int fnn_find_blas_thread_control(void *blas_function, fnn_blas_threads *out)
{
    static const char *const getters[] = {"scipy_openblas_get_num_threads",
                                          "openblas_get_num_threads", "MKL_Get_Max_Threads",
                                          NULL};
    static const char *const setters[] = {"scipy_openblas_set_num_threads",
                                          "openblas_set_num_threads", "MKL_Set_Num_Threads",
                                          NULL};
    Dl_info info;
    out->get = NULL;
    out->set = NULL;
    if (blas_function == NULL || !dladdr(blas_function, &info) || info.dli_fname == NULL)
        return 0;
    void *lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (lib == NULL)
        return 0;
    out->get = (int (*)(void))find_symbol(lib, getters);
    out->set = (void (*)(int))find_symbol(lib, setters);
    dlclose(lib); /* RTLD_NOLOAD: only drops the reference just taken */
    if (out->get == NULL || out->set == NULL)
        out->get = NULL, out->set = NULL;
    return out->get != NULL;
}
#else
int fnn_find_blas_thread_control(void *blas_function, fnn_blas_threads *out)
{
    (void)blas_function;
    out->get = NULL;
    out->set = NULL;
    return 0;
}
#endif
