#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "timeutil.h"

int log_min_level = LOG_INFO;

static const char *level_names[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return LOG_INFO;
}

static void put(struct log_line *l, const char *s, size_t n)
{
	/* Keep room for the closing "}\n". */
	if (l->n + n + 2 > sizeof(l->buf)) {
		l->truncated = 1;
		return;
	}
	memcpy(l->buf + l->n, s, n);
	l->n += n;
}

static void put_escaped(struct log_line *l, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	put(l, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(l, s + run, i - run);
		run = i + 1;
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			put(l, esc, 2);
		} else if (c == '\n') {
			put(l, "\\n", 2);
		} else {
			put(l, esc, 6);
		}
	}
	put(l, s + run, n - run);
	put(l, "\"", 1);
}

static void put_key(struct log_line *l, const char *key)
{
	put(l, ",", 1);
	put_escaped(l, key, strlen(key));
	put(l, ":", 1);
}

int log_begin(struct log_line *l, int level, const char *msg)
{
	if (level < log_min_level)
		return 0;
	char ts[32];
	time_format_rfc3339(time_now_ms(), ts);
	l->n = 0;
	l->truncated = 0;
	put(l, "{\"time\":\"", 9);
	put(l, ts, strlen(ts));
	put(l, "\",\"level\":\"", 11);
	put(l, level_names[level], strlen(level_names[level]));
	put(l, "\"", 1);
	put_key(l, "msg");
	put_escaped(l, msg, strlen(msg));
	return 1;
}

void log_strn(struct log_line *l, const char *key, const char *val, size_t n)
{
	put_key(l, key);
	if (val)
		put_escaped(l, val, n);
	else
		put(l, "null", 4);
}

void log_str(struct log_line *l, const char *key, const char *val)
{
	log_strn(l, key, val, val ? strlen(val) : 0);
}

void log_int(struct log_line *l, const char *key, int64_t val)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%" PRId64, val);
	put_key(l, key);
	put(l, num, (size_t)n);
}

void log_double(struct log_line *l, const char *key, double val)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%.3f", val);
	put_key(l, key);
	put(l, num, (size_t)n);
}

void log_end(struct log_line *l)
{
	if (l->truncated) {
		/* Room for this was kept by put(). */
		const char *t = ",\"truncated\":true";
		size_t tn = strlen(t);
		if (l->n + tn + 2 <= sizeof(l->buf)) {
			memcpy(l->buf + l->n, t, tn);
			l->n += tn;
		}
	}
	l->buf[l->n++] = '}';
	l->buf[l->n++] = '\n';
	ssize_t w = write(STDERR_FILENO, l->buf, l->n);
	(void)w;
}

void log_msgf(int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct log_line l;
	if (log_begin(&l, level, msg))
		log_end(&l);
}
