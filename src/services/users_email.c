/*
 * Email addresses as account names. One address, one account: the stored
 * lookup form is the address trimmed of white space (Unicode's too), in NFC,
 * case-folded whole (local part included, as every large provider treats
 * it). What cannot be an address, or reads as another one, is refused rather
 * than cleaned: empty labels and stray dots, control and format characters
 * (zero-width spaces, bidi controls, soft hyphens), spaces inside, full-width
 * forms, and a label (a dot-separated part of either side) that mixes
 * scripts, such as a Cyrillic "а" among Latin letters. A label may be in any
 * one script; Latin may join the CJK scripts, which are written together.
 *
 * Nor may a label hide or pose: default-ignorable code points (variation
 * selectors, the combining grapheme joiner, Mongolian free variation
 * selectors) are refused though utf8proc files most of them as marks; a digit
 * is ASCII or of the label's own script (Arabic-Indic digits in an Arabic
 * label), never another script's, a mathematical alphanumeric (U+1D400 to
 * U+1D7FF) or a number that is not a digit (circled, superscript, Roman);
 * and a label with anything outside ASCII is refused when every one of its
 * characters is ASCII or a look-alike of an ASCII letter, as "аӏісе" (all
 * Cyrillic) reads "alice". The look-alikes are a small table of the common
 * Cyrillic, Greek, Armenian, Cherokee and Latin ones: a subset of the
 * skeletons of UTS #39 (confusables.txt), not all of them.
 *
 * Script detection is by block ranges (utf8proc has no script property):
 * exact for the scripts whose letters pass for Latin ones (Greek, Cyrillic,
 * Armenian, Cherokee), and by 128-code-point block for the rest, which can
 * only err towards refusing.
 */
#include "users_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "../core/log.h"
#include "../core/utf8.h"

#define LOCAL_MAX 64
#define DOMAIN_MAX 253
#define ADDRESS_MAX 254
#define LABEL_MAX 63

enum script { SC_NONE = 0, SC_LATIN, SC_GREEK, SC_CYRILLIC, SC_ARMENIAN, SC_HEBREW, SC_ARABIC, SC_CHEROKEE,
	      SC_CJK, SC_OTHER };

static const struct {
	int32_t lo, hi;
	enum script s;
} script_ranges[] = {
	{ 0x0041, 0x024F, SC_LATIN },	 { 0x0250, 0x02AF, SC_LATIN },	  { 0x0370, 0x03FF, SC_GREEK },
	{ 0x0400, 0x052F, SC_CYRILLIC }, { 0x0530, 0x058F, SC_ARMENIAN }, { 0x0590, 0x05FF, SC_HEBREW },
	{ 0x0600, 0x06FF, SC_ARABIC },	 { 0x0750, 0x077F, SC_ARABIC },	  { 0x08A0, 0x08FF, SC_ARABIC },
	{ 0x1100, 0x11FF, SC_CJK },	 { 0x13A0, 0x13FF, SC_CHEROKEE }, { 0x1C80, 0x1C8F, SC_CYRILLIC },
	{ 0x1D00, 0x1DBF, SC_LATIN },	 { 0x1E00, 0x1EFF, SC_LATIN },	  { 0x1F00, 0x1FFF, SC_GREEK },
	{ 0x2C60, 0x2C7F, SC_LATIN },	 { 0x2DE0, 0x2DFF, SC_CYRILLIC }, { 0x2E80, 0x2FDF, SC_CJK },
	{ 0x3040, 0x31FF, SC_CJK },	 { 0x3400, 0x4DBF, SC_CJK },	  { 0x4E00, 0x9FFF, SC_CJK },
	{ 0xA640, 0xA69F, SC_CYRILLIC }, { 0xA720, 0xA7FF, SC_LATIN },	  { 0xAB30, 0xAB6F, SC_LATIN },
	{ 0xAB70, 0xABBF, SC_CHEROKEE }, { 0xAC00, 0xD7AF, SC_CJK },	  { 0xF900, 0xFAFF, SC_CJK },
	{ 0xFB00, 0xFB06, SC_LATIN },	 { 0xFB13, 0xFB17, SC_ARMENIAN }, { 0xFB1D, 0xFB4F, SC_HEBREW },
	{ 0xFB50, 0xFDFF, SC_ARABIC },	 { 0xFE70, 0xFEFF, SC_ARABIC },	  { 0x20000, 0x3FFFF, SC_CJK },
};

/* A letter's script: SC_OTHER + its 128-code-point block when unlisted. */
static int script_of(int32_t c)
{
	for (size_t i = 0; i < ARRAY_LEN(script_ranges); i++)
		if (c >= script_ranges[i].lo && c <= script_ranges[i].hi)
			return script_ranges[i].s;
	return SC_OTHER + (c >> 7);
}

static int is_letter(utf8proc_category_t k)
{
	return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static int is_mark(utf8proc_category_t k)
{
	return k >= UTF8PROC_CATEGORY_MN && k <= UTF8PROC_CATEGORY_ME;
}

/* Case-folded letters that pass for an ASCII letter (a subset of UTS #39). */
static const int32_t lookalikes[] = {
	/* Latin beyond ASCII */
	0x0131, 0x0251, 0x0261, 0x0269,
	/* Greek: α γ ι ν ο ρ υ χ ϲ ϳ */
	0x03B1, 0x03B3, 0x03B9, 0x03BD, 0x03BF, 0x03C1, 0x03C5, 0x03C7, 0x03F2, 0x03F3,
	/* Cyrillic: а е о р с у х і ј ӏ ѕ ԁ һ ԛ ԝ ѵ ү */
	0x0430, 0x0435, 0x043E, 0x0440, 0x0441, 0x0443, 0x0445, 0x0456, 0x0458, 0x04CF, 0x0455, 0x0501, 0x04BB,
	0x051B, 0x051D, 0x0475, 0x04AF,
	/* Armenian: հ ո ս օ ց */
	0x0570, 0x0578, 0x057D, 0x0585, 0x0581,
	/* Cherokee (folded to the capitals that read as Latin ones) */
	0x13A0, 0x13A2, 0x13A9, 0x13AA, 0x13AB, 0x13AC, 0x13B3, 0x13B7, 0x13BB, 0x13C3, 0x13CF, 0x13D2, 0x13DA,
	0x13DE, 0x13DF, 0x13E2, 0x13E6, 0x13F4,
};

static int lookalike(int32_t c)
{
	for (size_t i = 0; i < ARRAY_LEN(lookalikes); i++)
		if (lookalikes[i] == c)
			return 1;
	return 0;
}

/* White space as Unicode defines it (what a paste may bring at the ends). */
static int is_space(int32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
	       c == 0x3000 || c == 0xFEFF;
}

/* RFC 5322 atext, the ASCII an unquoted local part may hold (besides dots). */
static int ascii_atext(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* One dot-separated label of either side: its characters and its script. */
static int check_label(const unsigned char *s, size_t n, int domain)
{
	if (n == 0 || (domain && n > LABEL_MAX))
		return -1;
	if (domain && (s[0] == '-' || s[n - 1] == '-'))
		return -1;
	int first = 0, cjk = 0, latin = 0, digit_script = 0, nonascii = 0, poses = 1;
	size_t at = 0;
	while (at < n) {
		int32_t c;
		utf8proc_ssize_t k = utf8proc_iterate(s + at, (utf8proc_ssize_t)(n - at), &c);
		if (k <= 0)
			return -1;
		at += (size_t)k;
		if (c < 0x80) {
			if (domain ? !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') : !ascii_atext(c))
				return -1;
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
				latin = 1;
			continue;
		}
		if ((c >= 0xFF00 && c <= 0xFFEF) || /* full- and half-width forms */
		    (c >= 0x1D400 && c <= 0x1D7FF))  /* mathematical alphanumerics */
			return -1;
		const utf8proc_property_t *prop = utf8proc_get_property(c);
		if (prop->ignorable)
			return -1;
		nonascii = 1;
		if (!lookalike(c))
			poses = 0;
		utf8proc_category_t cat = (utf8proc_category_t)prop->category;
		if (cat == UTF8PROC_CATEGORY_ND) {
			int sc = script_of(c);
			if (digit_script && digit_script != sc)
				return -1;
			digit_script = sc;
		} else if (is_letter(cat)) {
			int sc = script_of(c);
			if (sc == SC_LATIN)
				latin = 1;
			else if (sc == SC_CJK)
				cjk = 1;
			else if (first && first != sc)
				return -1;
			else
				first = sc;
		} else if (!is_mark(cat)) {
			return -1; /* spaces, controls, format characters, symbols, other numbers, unassigned */
		}
	}
	/* One script; Latin may join CJK, nothing else may join anything. */
	if (first && (latin || cjk))
		return -1;
	/* Digits other than ASCII only in a label of their own script. */
	if (digit_script && digit_script != first)
		return -1;
	if (nonascii && poses)
		return -1;
	return 0;
}

static int check_address(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at || memchr(at + 1, '@', n - (size_t)(at + 1 - s)))
		return -1;
	size_t ln = (size_t)(at - s), dn = n - ln - 1;
	if (ln == 0 || ln > LOCAL_MAX || dn == 0 || dn > DOMAIN_MAX || n > ADDRESS_MAX)
		return -1;
	/* dot-atom: no empty label, so no leading, trailing or doubled dots */
	int labels = 0, last_numeric = 1;
	for (int side = 0; side < 2; side++) {
		const char *p = side ? at + 1 : s, *end = side ? s + n : at;
		for (;;) {
			const char *dot = memchr(p, '.', (size_t)(end - p));
			const char *le = dot ? dot : end;
			if (check_label((const unsigned char *)p, (size_t)(le - p), side))
				return -1;
			if (side) {
				labels++;
				last_numeric = strspn(p, "0123456789") >= (size_t)(le - p);
			}
			if (!dot)
				break;
			p = dot + 1;
		}
	}
	return labels >= 2 && !last_numeric ? 0 : -1;
}

int users_email_lookup_form(const char *in, char *out, size_t cap, struct err *e)
{
	size_t n = strlen(in);
	if (!utf8_valid(in, n))
		return err_set(e, ERR_INVALID, "not a valid email address");
	const unsigned char *s = (const unsigned char *)in, *end = s + n;
	/* trim Unicode white space at both ends */
	for (;;) {
		int32_t c;
		utf8proc_ssize_t k = s < end ? utf8proc_iterate(s, end - s, &c) : 0;
		if (k <= 0 || !is_space(c))
			break;
		s += k;
	}
	while (end > s) {
		const unsigned char *p = end - 1;
		while (p > s && (*p & 0xC0) == 0x80)
			p--;
		int32_t c;
		if (utf8proc_iterate(p, end - p, &c) <= 0 || !is_space(c))
			break;
		end = p;
	}
	if (end - s > ADDRESS_MAX * 4)
		return err_set(e, ERR_INVALID, "not a valid email address");
	utf8proc_uint8_t *m = NULL;
	utf8proc_ssize_t mn = utf8proc_map(s, end - s, &m, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
	int rc = 0;
	if (mn < 0)
		rc = err_set(e, ERR_INVALID, "not a valid email address");
	else if (check_address((const char *)m, (size_t)mn))
		rc = err_set(e, ERR_INVALID, "not a valid email address");
	else if ((size_t)mn >= cap)
		rc = err_set(e, ERR_INVALID, "not a valid email address (too long)");
	else
		memcpy(out, m, (size_t)mn + 1);
	free(m);
	return rc;
}

int users_normalize_email(char *email, size_t cap, struct err *e)
{
	char key[ADDRESS_MAX + 1];
	int rc = users_email_lookup_form(email, key, sizeof(key), e);
	if (rc)
		return rc;
	const char *kdom = strrchr(key, '@') + 1;
	size_t dl = strlen(kdom);
	if ((dl >= 8 && !strcmp(kdom + dl - 8, ".invalid")) || (dl >= 6 && !strcmp(kdom + dl - 6, ".local")))
		return err_set(e, ERR_INVALID, "not a valid email address (reserved domain)");
	/* What is shown: the local part as written (trimmed, NFC), the domain
	 * in its lookup form. */
	const char *s = email, *at = strrchr(email, '@');
	int32_t c;
	utf8proc_ssize_t k;
	while ((k = utf8proc_iterate((const utf8proc_uint8_t *)s, at - s, &c)) > 0 && is_space(c))
		s += k;
	utf8proc_uint8_t *local = NULL;
	utf8proc_ssize_t ln = utf8proc_map((const utf8proc_uint8_t *)s, at - s, &local,
					   UTF8PROC_STABLE | UTF8PROC_COMPOSE);
	if (ln < 0 || (size_t)ln + 1 + dl >= cap) {
		free(local);
		return err_set(e, ERR_INVALID, "not a valid email address (too long)");
	}
	snprintf(email, cap, "%s@%s", (const char *)local, kdom);
	free(local);
	return 0;
}

void users_email_stored_form(const char *in, char *out, size_t cap)
{
	/* How addresses were stored before the lookup form: ASCII white space
	 * trimmed and the domain's ASCII lowercased, nothing else. */
	while (*in == ' ' || (*in >= '\t' && *in <= '\r'))
		in++;
	size_t n = strlen(in);
	while (n && (in[n - 1] == ' ' || (in[n - 1] >= '\t' && in[n - 1] <= '\r')))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, in, n);
	out[n] = '\0';
	char *at = strrchr(out, '@');
	for (char *p = at ? at + 1 : out + n; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

int users_find_by_email(db_conn *c, struct arena *a, const char *email, const char *exact, struct user *out,
			struct err *e)
{
	struct user *items;
	int n;
	char key[4 * ADDRESS_MAX + 1];
	users_email_key(email, key, sizeof(key));
	int rc = store_user_by_email(c, a, key, &items, &n, e);
	if (rc)
		return rc;
	if (n == 1) {
		*out = items[0];
		return 0;
	}
	for (int i = 0; i < n && exact; i++)
		if (strcmp(items[i].email, exact) == 0) {
			*out = items[i];
			return 0;
		}
	if (n > 1)
		return err_set(e, exact ? ERR_NOT_FOUND : ERR_CONFLICT,
			       "several accounts share this address; use the exact address of one");
	/* A row an older node wrote without its lookup form, until the next
	 * start stores it. */
	return store_user_get(c, a, "email", exact ? exact : email, out, e);
}

void users_email_key(const char *in, char *out, size_t cap)
{
	struct err ee = { 0 };
	if (users_email_lookup_form(in, out, cap, &ee) == 0)
		return;
	utf8proc_uint8_t *m = NULL;
	utf8proc_ssize_t mn = utf8proc_map((const utf8proc_uint8_t *)in, 0, &m,
					   UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
	snprintf(out, cap, "%s", mn >= 0 && m ? (const char *)m : in);
	free(m);
}

static void report_collisions(db_conn *c, struct arena *a)
{
	struct user_email *items;
	int n;
	struct err e = { 0 };
	if (store_user_email_collisions(c, a, &items, &n, &e))
		return;
	for (int i = 0; i < n; i++) {
		struct log_line l;
		if (log_begin(&l, LOG_WARN, "accounts share an address; each signs in with its exact address")) {
			log_str(&l, "user_id", items[i].id);
			log_str(&l, "email", items[i].email);
			log_str(&l, "lookup_form", items[i].email_norm);
			log_end(&l);
		}
	}
}

int users_email_backfill(struct users *u, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	struct arena a;
	arena_init(&a, 4096);
	for (;;) {
		struct user_email *items;
		int n = 0;
		if ((rc = db_begin(c, e)) != 0)
			break;
		rc = store_user_emails_unnormed(c, &a, 500, &items, &n, e);
		for (int i = 0; !rc && i < n; i++) {
			char norm[4 * ADDRESS_MAX + 1];
			int dup;
			users_email_key(items[i].email, norm, sizeof(norm));
			rc = store_user_set_email_norm(c, items[i].id, norm, &dup, e);
			if (!rc && dup)
				users_audit("email_collision", items[i].id, NULL, "flagged, not merged");
		}
		if (!rc)
			rc = db_commit(c, e);
		else
			db_rollback(c);
		arena_free(&a);
		arena_init(&a, 4096);
		if (rc || n < 500)
			break;
	}
	if (!rc)
		report_collisions(c, &a);
	arena_free(&a);
	db_release(c);
	return rc;
}
