/*
 * check.h -- a minimal test harness for the C-level tests (no dependencies).
 *
 *   chk_begin("name[%d]", i);   start a test case (printf-style name)
 *   CHECK(cond, "fmt", ...);    an assertion; the case fails if any fails
 *   chk_end();                  print "ok"/"FAIL" for the case
 *   return chk_summary();       print "N passed, M failed" (cases), 0 iff M == 0
 */
#ifndef FASTNN_TESTS_CHECK_H
#define FASTNN_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int chk_n_passed, chk_n_failed, chk_n_checks, chk_case_fails;
static char chk_name[160];

/* At most this many failure messages per case (a broken loop would flood). */
#define CHK_MAX_MESSAGES 8

static void chk_begin(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(chk_name, sizeof chk_name, fmt, ap);
    va_end(ap);
    chk_case_fails = 0;
}

static void chk_end(void)
{
    if (chk_case_fails == 0) {
        chk_n_passed++;
        printf("ok   %s\n", chk_name);
    } else {
        chk_n_failed++;
        printf("FAIL %s (%d failed checks)\n", chk_name, chk_case_fails);
    }
    fflush(stdout);
}

static int chk_summary(void)
{
    printf("(%d checks)\n", chk_n_checks);
    printf("%d passed, %d failed\n", chk_n_passed, chk_n_failed);
    fflush(stdout);
    return chk_n_failed == 0 ? 0 : 1;
}

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        chk_n_checks++;                                                               \
        if (!(cond)) {                                                                \
            if (chk_case_fails++ < CHK_MAX_MESSAGES) {                                \
                printf("     %s:%d: [%s] CHECK(%s): ", __FILE__, __LINE__, chk_name,  \
                       #cond);                                                        \
                printf(__VA_ARGS__);                                                  \
                printf("\n");                                                         \
            }                                                                         \
        }                                                                             \
    } while (0)

#endif
