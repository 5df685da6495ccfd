/*
 * threads.c -- how many threads a call may use: after fork, and per training
 * step on a machine that is busy with other work.
 *
 * Fork.  GNU OpenMP keeps its worker threads in a pool owned by the thread
 * that first ran a parallel region.  fork() copies that pool's bookkeeping
 * but not its threads, so a child that enters a parallel region waits
 * forever for workers that do not exist.  A fork handler marks such a child,
 * and from then on every region of the core runs serially in it (results do
 * not depend on the thread count, so the child computes the parent's bits).
 * A child forked before the parent ever ran a region keeps its threads.
 *
 * Load.  Every parallel region ends in a barrier.  When other processes keep
 * the cores busy, a barrier waits for whichever of our threads the
 * scheduler has set aside, a whole time slice at worst, and a training step
 * of a mid-size network has a dozen regions: measured on 2 cores with two
 * busy processes, two threads made fits 4.5x (and up to 100x for deep
 * networks) slower than one.  So the training loop measures its own steps
 * and runs each stretch of steps on the thread count that was faster
 * recently (fnn_thread_policy), trying the other count now and then.
 */
#include <string.h>
#include <time.h>

#include "internal.h"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FNN_HAVE_ATFORK 1
#endif

volatile int fnn_team_started = 0;
volatile int fnn_fork_serial = 0;

#ifdef FNN_HAVE_ATFORK
static void child_after_fork(void)
{
    if (fnn_team_started)
        fnn_fork_serial = 1;
}

/* Registered when the library is loaded, before any region can run. */
__attribute__((constructor)) static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, child_after_fork);
}
#endif

int fnn_has_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fnn_max_threads(void)
{
#ifdef _OPENMP
    return fnn_fork_serial ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

int fnn_forked_serial(void) { return fnn_fork_serial; }

double fnn_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A window of steps ends after this much time and at least
 * FNN_WINDOW_MIN_STEPS steps (or one step that alone took ten times as
 * long): long enough to average over several steps, short enough that a
 * trial of the slower count costs little. */
#define FNN_WINDOW_SECONDS 2e-3
#define FNN_WINDOW_MIN_STEPS 2
/* The other count is tried again once the windows run since the last trial
 * took FNN_PROBE_RATIO times what a trial window is expected to cost over
 * the current count: trials cost about 1/FNN_PROBE_RATIO of the time,
 * however slow the other count is.  Between FNN_PROBE_MIN_WINDOWS and
 * FNN_PROBE_MAX_WINDOWS windows pass between trials: a change of load is
 * noticed within FNN_PROBE_MAX_WINDOWS windows, and a count picked on a
 * noisy window is corrected soon. */
#define FNN_PROBE_RATIO 64.0
#define FNN_PROBE_MIN_WINDOWS 4
#define FNN_PROBE_MAX_WINDOWS 256
/* A trial must be this much faster per row to take over: two counts that
 * are near equal do not flip back and forth on noise. */
#define FNN_SWITCH_MARGIN 0.97

void fnn_thread_policy_reset(fnn_thread_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->use_many = 1;
}

int fnn_thread_policy_threads(const fnn_thread_policy *p, int max_threads)
{
    if (max_threads < 1)
        return 1;
    if (p == NULL)
        return max_threads;
    return (p->use_many ^ p->probing) ? max_threads : 1;
}

void fnn_thread_policy_record(fnn_thread_policy *p, int64_t rows, double seconds)
{
    if (p == NULL || rows <= 0 || !(seconds >= 0))
        return;
    const int many = p->use_many ^ p->probing;
    p->steps[many]++;
    p->window_rows += rows;
    p->window_steps += 1;
    p->window_seconds += seconds;
    if (p->window_seconds < FNN_WINDOW_SECONDS ||
        (p->window_steps < FNN_WINDOW_MIN_STEPS && seconds < 10 * FNN_WINDOW_SECONDS))
        return;
    const double window_seconds = p->window_seconds;
    const double rows_per_window = (double)p->window_rows;
    const double rate = window_seconds / rows_per_window;
    p->window_rows = 0;
    p->window_steps = 0;
    p->window_seconds = 0;
    p->sec_per_row[many] = rate;
    if (p->probing) {
        /* The trial against the current count's mean since the last trial,
         * not its last window: one window the scheduler slowed down (a time
         * slice lost to another process) must not hand the steps to the
         * slower count on a quiet machine, while lasting load (most windows
         * slow) still does.  Not the best window: under load the N-thread
         * windows are bimodal, and the rare good one hid the load. */
        const double current = p->rows_since_trial > 0
                                   ? p->credit / (double)p->rows_since_trial
                                   : p->sec_per_row[!many];
        p->probing = 0;
        if (rate < FNN_SWITCH_MARGIN * current)
            p->use_many = many;
        p->windows = 0;
        p->credit = 0;
        p->rows_since_trial = 0;
        return;
    }
    p->windows++;
    p->credit += window_seconds;
    p->rows_since_trial += (int64_t)rows_per_window;
    /* The other count never measured yet: try it at once, so that a busy
     * machine is noticed in the first milliseconds of a fit.  A trial's
     * expected cost is reckoned from the current count's mean too: one
     * slowed-down window would make trials look free and frequent. */
    const double other = p->sec_per_row[!many];
    const double trial_cost = (other - p->credit / (double)p->rows_since_trial) * rows_per_window;
    if (other == 0 || p->windows >= FNN_PROBE_MAX_WINDOWS ||
        (p->windows >= FNN_PROBE_MIN_WINDOWS && p->credit >= FNN_PROBE_RATIO * trial_cost))
        p->probing = 1;
}
