#ifndef BOOKD_TIMEUTIL_H
#define BOOKD_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

/* Wall clock, milliseconds since the Unix epoch. */
int64_t time_now_ms(void);
/* Monotonic clock in microseconds, for durations. */
int64_t time_mono_us(void);
/* `clock`'s time `ms` milliseconds from now: a deadline for
 * pthread_cond_timedwait on a condition variable of that clock. */
struct timespec time_after_ms(clockid_t clock, int64_t ms);
/* "2026-11-22T01:24:37.123Z" into out (at least 25 bytes). */
void time_format_rfc3339(int64_t ms, char out[32]);

#endif
