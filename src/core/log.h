/*
 * Structured logs: one JSON object per line on stderr, written with a single
 * write(2) so that lines from different threads never interleave. Macros test
 * the level before evaluating their arguments. Never pass secrets.
 *
 *   struct log_line l;
 *   if (log_begin(&l, LOG_INFO, "request")) {
 *           log_str(&l, "request_id", id);
 *           log_int(&l, "status", 200);
 *           log_end(&l);
 *   }
 */
#ifndef BOOKD_LOG_H
#define BOOKD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

extern int log_min_level;

struct log_line {
	char buf[4096];
	size_t n;
	int truncated;
};

int log_level_parse(const char *s);
/* Returns 0 (and writes nothing) when `level` is filtered out. */
int log_begin(struct log_line *l, int level, const char *msg);
void log_str(struct log_line *l, const char *key, const char *val);
void log_strn(struct log_line *l, const char *key, const char *val, size_t n);
void log_int(struct log_line *l, const char *key, int64_t val);
void log_double(struct log_line *l, const char *key, double val);
void log_end(struct log_line *l);

/* A free-form message with printf formatting: {"time","level","msg"}. */
void log_msgf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (LOG_DEBUG >= log_min_level) log_msgf(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) do { if (LOG_INFO >= log_min_level) log_msgf(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...) do { if (LOG_WARN >= log_min_level) log_msgf(LOG_WARN, __VA_ARGS__); } while (0)
#define log_error(...) do { if (LOG_ERROR >= log_min_level) log_msgf(LOG_ERROR, __VA_ARGS__); } while (0)

#endif
