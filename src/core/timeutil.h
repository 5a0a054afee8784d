#ifndef BOOKD_TIMEUTIL_H
#define BOOKD_TIMEUTIL_H

#include <stdint.h>

/* Wall clock, milliseconds since the Unix epoch. */
int64_t time_now_ms(void);
/* Monotonic clock in microseconds, for durations. */
int64_t time_mono_us(void);
/* "2026-11-22T01:24:37.123Z" into out (at least 25 bytes). */
void time_format_rfc3339(int64_t ms, char out[32]);

#endif
