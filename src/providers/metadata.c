/*
 * The metadata chain (Open Library, then Google Books) and what the sources
 * share: one GET-a-JSON-object call, the language table, date and string
 * clean-up. Each source owns its HTTP client, so a dead Open Library opens
 * its own breaker and Google Books is still asked at once.
 */
#include "metadata_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../core/utf8.h"

static const struct metadata_ops *const sources[] = { &metadata_openlibrary_ops, &metadata_googlebooks_ops };
#define NSOURCES (int)(sizeof(sources) / sizeof(sources[0]))

struct metadata {
	struct metadata_config cfg;
	void *self[NSOURCES];
};

/* ---- shared helpers ------------------------------------------------------------ */

int metadata_http_new(struct phttp **out, const char *name, const struct metadata_config *cfg, struct stop *stop,
		      struct err *e)
{
	struct phttp_config hc = {
		.name = name,
		.tries = cfg->tries > 0 ? cfg->tries : 3,
		.breaker_failures = 5,
		.breaker_seconds = 30,
		.max_response = METADATA_RESPONSE_MAX,
		.backoff_ms = 500,
		.retry_after_max_ms = 10000,
	};
	return phttp_new(out, &hc, stop, e);
}

int64_t metadata_deadline(const struct metadata_config *cfg)
{
	int64_t t = cfg->timeout_s > 0 ? cfg->timeout_s : 30;
	int64_t n = cfg->tries > 0 ? cfg->tries : 3;
	/* every attempt of the edition call at its longest, plus the backoff
	 * waits; the calls after it share what is left */
	return time_now_ms() + n * t * 1000 + n * 2000;
}

/* A 2xx answer must be a JSON object; anything else is the source's fault. */
static int check_object(void *ctx, const char *body, size_t n, struct err *e)
{
	const char *what = ctx;
	json_t *doc = json_loadb(body, n, 0, NULL);
	int ok = json_is_object(doc);
	json_decref(doc);
	if (ok)
		return PHTTP_ACCEPT;
	err_set(e, ERR_UNAVAILABLE, "%s sent a malformed answer (not a JSON object)", what);
	return PHTTP_BAD_ANSWER;
}

int metadata_get_json(struct phttp *h, const char *url, int64_t deadline_ms, long attempt_ms, const char *what,
		      json_t **doc, struct err *e)
{
	*doc = NULL;
	const char *headers[] = { "Accept: application/json" };
	struct phttp_request req = {
		.url = url,
		.headers = headers,
		.nheaders = 1,
		.deadline_ms = deadline_ms,
		.attempt_timeout_ms = attempt_ms,
		.follow_redirects = 1,
		.check = check_object,
		.ctx = (void *)what,
	};
	struct phttp_response resp;
	int rc = phttp_call(h, &req, &resp, e);
	if (rc) {
		if (resp.outcome == PHTTP_LOCAL && (resp.status == 404 || resp.status == 410))
			return err_set(e, ERR_NOT_FOUND, "%s: not found", what);
		return rc == ERR_INTERNAL ? rc : ERR_UNAVAILABLE;
	}
	*doc = json_loadb(resp.body, resp.n, 0, NULL);
	phttp_response_free(&resp);
	if (!*doc)
		return err_set(e, ERR_INTERNAL, "%s: out of memory", what);
	return 0;
}

/* MARC (bibliographic) and ISO 639-2 codes with a two-letter BCP 47 form. */
static const struct {
	const char *marc, *bcp47;
} languages[] = {
	{ "eng", "en" }, { "urd", "ur" }, { "fre", "fr" }, { "fra", "fr" }, { "ger", "de" }, { "deu", "de" },
	{ "spa", "es" }, { "ita", "it" }, { "por", "pt" }, { "rus", "ru" }, { "jpn", "ja" }, { "chi", "zh" },
	{ "zho", "zh" }, { "ara", "ar" }, { "hin", "hi" }, { "ben", "bn" }, { "per", "fa" }, { "fas", "fa" },
	{ "tur", "tr" }, { "dut", "nl" }, { "nld", "nl" }, { "swe", "sv" }, { "nor", "no" }, { "dan", "da" },
	{ "fin", "fi" }, { "pol", "pl" }, { "cze", "cs" }, { "ces", "cs" }, { "gre", "el" }, { "ell", "el" },
	{ "heb", "he" }, { "kor", "ko" }, { "vie", "vi" }, { "tha", "th" }, { "ind", "id" }, { "may", "ms" },
	{ "msa", "ms" }, { "pan", "pa" }, { "tam", "ta" }, { "tel", "te" }, { "mar", "mr" }, { "guj", "gu" },
	{ "ukr", "uk" }, { "hun", "hu" }, { "rum", "ro" }, { "ron", "ro" }, { "lat", "la" }, { "cat", "ca" },
	{ "swa", "sw" }, { "pus", "ps" }, { "snd", "sd" }, { "nep", "ne" }, { "sin", "si" }, { "kan", "kn" },
	{ "mal", "ml" }, { "bul", "bg" }, { "hrv", "hr" }, { "srp", "sr" }, { "slo", "sk" }, { "slk", "sk" },
	{ "slv", "sl" }, { "est", "et" }, { "lav", "lv" }, { "lit", "lt" }, { "ice", "is" }, { "isl", "is" },
	{ "wel", "cy" }, { "cym", "cy" }, { "gle", "ga" }, { "baq", "eu" }, { "eus", "eu" }, { "glg", "gl" },
	{ "arm", "hy" }, { "hye", "hy" }, { "geo", "ka" }, { "kat", "ka" }, { "tgl", "tl" }, { "afr", "af" },
};

const char *metadata_language(struct arena *a, const char *code)
{
	if (!code)
		return NULL;
	size_t n = strlen(code);
	for (size_t i = 0; i < n; i++)
		if (!isalpha((unsigned char)code[i]))
			return NULL;
	if (n == 3)
		for (size_t i = 0; i < sizeof(languages) / sizeof(languages[0]); i++)
			if (strcasecmp(code, languages[i].marc) == 0)
				return languages[i].bcp47;
	if (n != 2 && n != 3)
		return NULL;
	char *s = arena_strdup(a, code);
	for (char *p = s; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun",
				      "jul", "aug", "sep", "oct", "nov", "dec" };

const char *metadata_date(struct arena *a, const char *s)
{
	if (!s || !*s)
		return NULL;
	int year = 0, month = 0, day = 0, nums[3] = { 0 }, nn = 0;
	for (const char *p = s; *p;) {
		if (isdigit((unsigned char)*p)) {
			long v = 0;
			int len = 0;
			while (isdigit((unsigned char)*p) && len < 9)
				v = v * 10 + (*p++ - '0'), len++;
			while (isdigit((unsigned char)*p))
				p++;
			if (len == 4 && v >= 1000 && v <= 2999 && !year)
				year = (int)v;
			else if (len <= 2 && nn < 3)
				nums[nn++] = (int)v;
		} else if (isalpha((unsigned char)*p)) {
			const char *w = p;
			while (isalpha((unsigned char)*p))
				p++;
			for (int m = 0; m < 12 && !month; m++)
				if (p - w >= 3 && strncasecmp(w, months[m], 3) == 0)
					month = m + 1;
		} else {
			p++;
		}
	}
	if (!year)
		return arena_strndup(a, s, utf8_prefix(s, strlen(s), 64));
	if (month) { /* "Aug 01, 2008", "1 March 2008": a number beside it is the day */
		if (nn >= 1 && nums[0] >= 1 && nums[0] <= 31)
			day = nums[0];
	} else if (nn >= 1 && nums[0] >= 1 && nums[0] <= 12) { /* "2008-08-01" */
		month = nums[0];
		if (nn >= 2 && nums[1] >= 1 && nums[1] <= 31)
			day = nums[1];
	}
	if (day && month)
		return arena_printf(a, "%04d-%02d-%02d", year, month, day);
	if (month)
		return arena_printf(a, "%04d-%02d", year, month);
	return arena_printf(a, "%04d", year);
}

const char *metadata_str(struct arena *a, json_t *v, size_t max)
{
	if (!json_is_string(v))
		return NULL;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (!n || memchr(s, '\0', n))
		return NULL;
	return arena_strndup(a, s, utf8_prefix(s, n, max));
}

void metadata_add(const char **list, int *n, int cap, const char *s)
{
	if (!s || *n >= cap)
		return;
	for (int i = 0; i < *n; i++)
		if (strcmp(list[i], s) == 0)
			return;
	list[(*n)++] = s;
}

/* ---- the chain ----------------------------------------------------------------- */

void metadata_close(struct metadata *m)
{
	if (!m)
		return;
	for (int i = 0; i < NSOURCES; i++)
		if (m->self[i])
			sources[i]->close(m->self[i]);
	xfree(m);
}

int metadata_open(struct metadata **out, const struct metadata_config *cfg, struct stop *stop, struct err *e)
{
	*out = NULL;
	struct metadata *m = xcalloc(1, sizeof(*m));
	if (!m)
		return err_set(e, ERR_INTERNAL, "out of memory");
	m->cfg = *cfg;
	if (m->cfg.timeout_s <= 0)
		m->cfg.timeout_s = 30;
	if (m->cfg.tries <= 0)
		m->cfg.tries = 3;
	for (int i = 0; i < NSOURCES; i++) {
		int rc = sources[i]->open(&m->self[i], &m->cfg, stop, e);
		if (rc) {
			metadata_close(m);
			return rc;
		}
	}
	*out = m;
	return 0;
}

int metadata_lookup(struct metadata *m, struct arena *a, const char *isbn13, struct book_metadata *out,
		    struct err *e)
{
	char why[NSOURCES][128];
	int unavailable = 0;
	for (int i = 0; i < NSOURCES; i++) {
		struct err se = { 0 };
		memset(out, 0, sizeof(*out));
		int rc = sources[i]->lookup(m->self[i], a, isbn13, metadata_deadline(&m->cfg), out, &se);
		if (rc == 0) {
			out->source = sources[i]->name;
			if (!out->isbn13)
				out->isbn13 = arena_strdup(a, isbn13);
			return 0;
		}
		if (rc == ERR_INTERNAL)
			return err_set(e, rc, "%s", se.msg);
		if (rc != ERR_NOT_FOUND) {
			unavailable = 1;
			log_warn("metadata: %s for ISBN %s: %s", sources[i]->name, isbn13, se.msg);
		}
		const char *w = rc == ERR_NOT_FOUND ? "not found" : se.msg;
		size_t wn = utf8_prefix(w, strlen(w), sizeof(why[i]) - 1);
		memcpy(why[i], w, wn);
		why[i][wn] = '\0';
	}
	memset(out, 0, sizeof(*out));
	return err_set(e, unavailable ? ERR_UNAVAILABLE : ERR_NOT_FOUND,
		       "ISBN %s: %s (Open Library: %s; Google Books: %s)", isbn13,
		       unavailable ? "the metadata sources could not be asked" : "no metadata source knows it", why[0],
		       why[1]);
}
