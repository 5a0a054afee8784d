#include "uuid.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>

#include "timeutil.h"

int random_bytes(void *p, size_t n)
{
	unsigned char *b = p;
	while (n) {
		ssize_t r = getrandom(b, n, 0);
		if (r < 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Monotonicity within the process: when the clock has not moved (or went
 * back), the 12-bit rand_a field is used as a counter (RFC 9562 §6.2, method 1). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms;
static unsigned seq;

int uuid_v7(char out[UUID_STR_LEN])
{
	unsigned char b[16];
	if (random_bytes(b, sizeof(b)))
		return -1;
	int64_t ms = time_now_ms();
	pthread_mutex_lock(&lock);
	if (ms <= last_ms) {
		ms = last_ms;
		if (++seq > 0xfff) {
			ms = ++last_ms;
			seq = 0;
		}
	} else {
		last_ms = ms;
		seq = (unsigned)(b[6] & 0x07) << 8 | b[7]; /* random start, room to count */
	}
	unsigned s = seq;
	pthread_mutex_unlock(&lock);

	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | ((s >> 8) & 0x0f));
	b[7] = (unsigned char)(s & 0xff);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, UUID_STR_LEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
	return 0;
}

int uuid_valid(const char *s, size_t n)
{
	if (n != 36)
		return 0;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}
