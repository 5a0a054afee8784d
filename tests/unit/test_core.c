/* Unit tests for core/: buf, arena, utf8, uuid, cache, json helpers and the
 * allocation-failure hook (mem_fail_after). */
#include "unit.h"

#include "core/arena.h"
#include "core/buf.h"
#include "core/cache.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/rcbuf.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "core/uuid.h"

/* Every test starts and ends with allocation failures disabled. */
static int reset_mem(void **state)
{
	mem_fail_after(-1);
	return 0;
}

/* ==== buf =================================================================== */

static void test_buf_append_and_terminate(void **state)
{
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(buf_puts(&b, "hello"), BUF_OK);
	assert_int_equal(buf_putc(&b, ' '), BUF_OK);
	assert_int_equal(buf_append(&b, "world!!", 5), BUF_OK);
	assert_int_equal(b.n, 11);
	assert_string_equal(b.p, "hello world");
	buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.n, 0);
}

static void test_buf_empty_append_allocates_terminated(void **state)
{
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "", 0), BUF_OK);
	assert_non_null(b.p);
	assert_string_equal(b.p, "");
	buf_free(&b);
}

static void test_buf_exactly_max_fits(void **state)
{
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_puts(&b, "0123456789"), BUF_OK);
	assert_int_equal(b.n, 10);
	assert_string_equal(b.p, "0123456789");
	buf_free(&b);
}

static void test_buf_toobig_leaves_content(void **state)
{
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_puts(&b, "hello"), BUF_OK);
	assert_int_equal(buf_puts(&b, "world!"), BUF_TOOBIG);
	assert_int_equal(b.n, 5);
	assert_string_equal(b.p, "hello");
	assert_int_equal(buf_puts(&b, "world"), BUF_OK);
	assert_int_equal(buf_putc(&b, 'x'), BUF_TOOBIG);
	assert_string_equal(b.p, "helloworld");
	buf_free(&b);
}

static void test_buf_toobig_on_empty(void **state)
{
	struct buf b;
	buf_init(&b, 3);
	assert_int_equal(buf_puts(&b, "abcd"), BUF_TOOBIG);
	assert_int_equal(b.n, 0);
	assert_true(b.p == NULL || b.p[0] == '\0');
	buf_free(&b);
}

static void test_buf_max_zero(void **state)
{
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_putc(&b, 'a'), BUF_TOOBIG);
	assert_int_equal(b.n, 0);
	buf_free(&b);
}

static void test_buf_huge_length_no_overflow(void **state)
{
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(buf_puts(&b, "abc"), BUF_OK);
	/* n + b->n would wrap around: must still be refused, not written. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 1), BUF_TOOBIG);
	assert_string_equal(b.p, "abc");
	buf_free(&b);
}

static void test_buf_growth_keeps_data(void **state)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_putc(&b, (char)('a' + i % 26)), BUF_OK);
	assert_int_equal(b.n, 10000);
	assert_true(b.cap > b.n);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(b.p[i], 'a' + i % 26);
	assert_int_equal(b.p[10000], '\0');
	buf_free(&b);
}

static void test_buf_printf_short(void **state)
{
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(buf_printf(&b, "%s=%d", "n", 42), BUF_OK);
	assert_int_equal(buf_printf(&b, ";%05.1f", 2.5), BUF_OK);
	assert_string_equal(b.p, "n=42;002.5");
	assert_int_equal(b.n, 10);
	buf_free(&b);
}

static void test_buf_printf_long(void **state)
{
	char big[5001];
	memset(big, 'q', 5000);
	big[5000] = '\0';
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_puts(&b, "<"), BUF_OK);
	assert_int_equal(buf_printf(&b, "%s|%d", big, 7), BUF_OK);
	assert_int_equal(b.n, 1 + 5000 + 2);
	assert_int_equal(b.p[0], '<');
	assert_memory_equal(b.p + 1, big, 5000);
	assert_string_equal(b.p + 5001, "|7");
	buf_free(&b);
}

static void test_buf_printf_exactly_256(void **state)
{
	/* The boundary between the small stack path and the direct path. */
	char s[257];
	memset(s, 'z', 256);
	s[256] = '\0';
	struct buf b;
	buf_init(&b, 1000);
	assert_int_equal(buf_printf(&b, "%s", s), BUF_OK);
	assert_int_equal(b.n, 256);
	assert_string_equal(b.p, s);
	buf_free(&b);
}

static void test_buf_printf_long_toobig_unchanged(void **state)
{
	char big[1001];
	memset(big, 'q', 1000);
	big[1000] = '\0';
	struct buf b;
	buf_init(&b, 500);
	assert_int_equal(buf_puts(&b, "keep"), BUF_OK);
	assert_int_equal(buf_printf(&b, "%s", big), BUF_TOOBIG);
	assert_int_equal(b.n, 4);
	assert_string_equal(b.p, "keep");
	buf_free(&b);
}

static void test_buf_printf_short_toobig_unchanged(void **state)
{
	struct buf b;
	buf_init(&b, 6);
	assert_int_equal(buf_puts(&b, "abc"), BUF_OK);
	assert_int_equal(buf_printf(&b, "%d", 12345), BUF_TOOBIG);
	assert_string_equal(b.p, "abc");
	buf_free(&b);
}

static void test_buf_steal_and_reset(void **state)
{
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(buf_puts(&b, "take me"), BUF_OK);
	char *s = buf_steal(&b);
	assert_string_equal(s, "take me");
	assert_null(b.p);
	assert_int_equal(b.n, 0);
	xfree(s);
	/* The buf is usable again, with its cap unchanged. */
	assert_int_equal(buf_puts(&b, "again"), BUF_OK);
	assert_string_equal(b.p, "again");
	buf_reset(&b);
	assert_int_equal(b.n, 0);
	assert_string_equal(b.p, "");
	assert_int_equal(b.max, 100);
	buf_free(&b);
}

static void test_buf_steal_empty(void **state)
{
	struct buf b;
	buf_init(&b, 10);
	char *s = buf_steal(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	xfree(s);
}

/* ==== arena ================================================================= */

static void test_arena_alignment(void **state)
{
	struct arena a;
	arena_init(&a, 256);
	static const size_t sizes[] = { 1, 3, 7, 15, 16, 17, 31, 33, 100, 0, 5, 200, 1000, 9 };
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		void *p = arena_alloc(&a, sizes[i]);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
	}
	arena_free(&a);
}

static void test_arena_allocations_distinct_and_writable(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	unsigned char *ptrs[200];
	for (int i = 0; i < 200; i++) {
		ptrs[i] = arena_alloc(&a, 24);
		assert_non_null(ptrs[i]);
		memset(ptrs[i], i, 24);
	}
	for (int i = 0; i < 200; i++)
		for (int k = 0; k < 24; k++)
			assert_int_equal(ptrs[i][k], (unsigned char)i);
	arena_free(&a);
}

static void test_arena_zero_size(void **state)
{
	struct arena a;
	arena_init(&a, 0); /* 0 means the default first block */
	void *p = arena_alloc(&a, 0), *q = arena_alloc(&a, 0);
	assert_non_null(p);
	assert_non_null(q);
	assert_ptr_not_equal(p, q);
	arena_free(&a);
}

/* An array grown one element at a time keeps its elements, doubles its
 * capacity only when full, and hands back the same array while there is room. */
static void test_arena_grow(void **state)
{
	struct arena a;
	arena_init(&a, 0);
	int *items = NULL, n = 0, cap = 0;
	for (int i = 0; i < 100; i++) {
		int *before = items, cap_before = cap;
		items = arena_grow(&a, items, n, &cap, sizeof(*items));
		assert_non_null(items);
		if (n < cap_before)
			assert_ptr_equal(items, before);
		else
			assert_int_equal(cap, cap_before ? 2 * cap_before : 16);
		items[n++] = i * 7;
	}
	assert_int_equal(cap, 128);
	for (int i = 0; i < 100; i++)
		assert_int_equal(items[i], i * 7);
	arena_free(&a);
}

static void test_arena_large_allocation(void **state)
{
	struct arena a;
	arena_init(&a, 1024);
	char *small1 = arena_strdup(&a, "before");
	size_t big_n = (size_t)4 << 20;
	unsigned char *big = arena_alloc(&a, big_n);
	assert_non_null(big);
	assert_int_equal((uintptr_t)big % 16, 0);
	memset(big, 0x5a, big_n);
	char *small2 = arena_strdup(&a, "after");
	assert_string_equal(small1, "before");
	assert_string_equal(small2, "after");
	assert_int_equal(big[0], 0x5a);
	assert_int_equal(big[big_n - 1], 0x5a);
	assert_true(a.total >= big_n + 12);
	arena_free(&a);
}

static void test_arena_large_first_allocation(void **state)
{
	struct arena a;
	arena_init(&a, 128);
	char *big = arena_alloc(&a, 100000);
	assert_non_null(big);
	memset(big, 1, 100000);
	assert_non_null(arena_alloc(&a, 8));
	arena_free(&a);
}

static void test_arena_total(void **state)
{
	struct arena a;
	arena_init(&a, 4096);
	assert_int_equal(a.total, 0);
	assert_non_null(arena_alloc(&a, 10));
	assert_non_null(arena_alloc(&a, 20));
	assert_true(a.total >= 30);
	assert_true(a.total <= 30 + 2 * 15);
	arena_free(&a);
	assert_int_equal(a.total, 0);
	assert_null(a.head);
}

static void test_arena_reuse_after_free(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	assert_non_null(arena_strdup(&a, "x"));
	arena_free(&a);
	char *s = arena_strdup(&a, "second life");
	assert_string_equal(s, "second life");
	arena_free(&a);
}

static void test_arena_strndup(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	char *s = arena_strndup(&a, "abcdef", 3);
	assert_string_equal(s, "abc");
	char *e = arena_strndup(&a, "abc", 0);
	assert_string_equal(e, "");
	arena_free(&a);
}

static void test_arena_printf(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	char *s = arena_printf(&a, "%s-%d-%c", "id", 42, 'z');
	assert_string_equal(s, "id-42-z");
	arena_free(&a);
}

static void test_arena_printf_long(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	char big[10001];
	memset(big, 'w', 10000);
	big[10000] = '\0';
	char *s = arena_printf(&a, "[%s]", big);
	assert_non_null(s);
	assert_int_equal(strlen(s), 10002);
	assert_int_equal(s[0], '[');
	assert_int_equal(s[10001], ']');
	assert_memory_equal(s + 1, big, 10000);
	arena_free(&a);
}

static void test_arena_printf_empty(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	char *s = arena_printf(&a, "%s", "");
	assert_non_null(s);
	assert_string_equal(s, "");
	arena_free(&a);
}

/* ==== mem_fail_after ======================================================== */

static void test_mem_fail_arena_first_block(void **state)
{
	struct arena a;
	arena_init(&a, 1024);
	mem_fail_after(0);
	assert_null(arena_alloc(&a, 10));
	assert_null(a.head);
	assert_int_equal(a.total, 0);
	mem_fail_after(-1);
	assert_non_null(arena_alloc(&a, 10));
	arena_free(&a);
}

static void test_mem_fail_arena_new_block_keeps_old(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	char *s = arena_strdup(&a, "survivor");
	assert_non_null(s);
	size_t total = a.total;
	mem_fail_after(0);
	/* 64 bytes do not fit the 48 left: a new block is needed, and fails;
	 * what was allocated stays valid. */
	assert_null(arena_alloc(&a, 60));
	mem_fail_after(-1);
	assert_int_equal(a.total, total);
	assert_string_equal(s, "survivor");
	arena_free(&a);
}

static void test_mem_fail_arena_large(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	assert_non_null(arena_alloc(&a, 8));
	mem_fail_after(0);
	assert_null(arena_alloc(&a, 1 << 16));
	mem_fail_after(-1);
	assert_non_null(arena_alloc(&a, 1 << 16));
	arena_free(&a);
}

static void test_mem_fail_arena_printf_and_strdup(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	mem_fail_after(0);
	assert_null(arena_printf(&a, "%d", 1));
	mem_fail_after(0);
	assert_null(arena_strdup(&a, "x"));
	mem_fail_after(-1);
	arena_free(&a);
}

static void test_mem_fail_after_n_successes(void **state)
{
	struct arena a;
	arena_init(&a, 64);
	/* Each allocation of 64 bytes needs a block of its own. */
	mem_fail_after(2);
	assert_non_null(arena_alloc(&a, 64));
	assert_non_null(arena_alloc(&a, 64));
	assert_null(arena_alloc(&a, 64));
	mem_fail_after(-1);
	arena_free(&a);
}

static void test_mem_fail_buf_append(void **state)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_puts(&b, "hello"), BUF_OK);
	char big[1000];
	memset(big, 'b', sizeof(big));
	mem_fail_after(0);
	assert_int_equal(buf_append(&b, big, sizeof(big)), BUF_NOMEM);
	mem_fail_after(-1);
	assert_int_equal(b.n, 5);
	assert_string_equal(b.p, "hello");
	assert_int_equal(buf_append(&b, big, sizeof(big)), BUF_OK);
	assert_int_equal(b.n, 1005);
	buf_free(&b);
}

static void test_mem_fail_buf_first_alloc(void **state)
{
	struct buf b;
	buf_init(&b, 100);
	mem_fail_after(0);
	assert_int_equal(buf_puts(&b, "x"), BUF_NOMEM);
	mem_fail_after(-1);
	assert_null(b.p);
	assert_int_equal(b.n, 0);
	buf_free(&b);
}

static void test_mem_fail_buf_printf_long(void **state)
{
	char big[600];
	memset(big, 'p', 599);
	big[599] = '\0';
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_puts(&b, "keep"), BUF_OK);
	mem_fail_after(0);
	assert_int_equal(buf_printf(&b, "%s", big), BUF_NOMEM);
	mem_fail_after(-1);
	assert_string_equal(b.p, "keep");
	buf_free(&b);
}

static void test_mem_fail_disabled(void **state)
{
	mem_fail_after(-1);
	for (int i = 0; i < 100; i++) {
		void *p = xmalloc(16);
		assert_non_null(p);
		xfree(p);
	}
}

static void test_mem_fail_xstrdup(void **state)
{
	mem_fail_after(0);
	assert_null(xstrdup("abc"));
	/* One failure only: the countdown disables itself afterwards. */
	char *s = xstrdup("abc");
	assert_non_null(s);
	xfree(s);
	mem_fail_after(-1);
}

/* ==== utf8 ================================================================== */

#define U(s) utf8_valid(s, sizeof(s) - 1)

static void test_utf8_ascii(void **state)
{
	assert_true(U("hello, world"));
	assert_true(utf8_valid("", 0));
	assert_true(U("a\0b")); /* U+0000 is well-formed */
}

static void test_utf8_valid_multibyte(void **state)
{
	assert_true(U("\xC3\xA9"));		  /* é, 2 bytes */
	assert_true(U("\xC2\x80"));		  /* U+0080, smallest 2-byte */
	assert_true(U("\xDF\xBF"));		  /* U+07FF */
	assert_true(U("\xE0\xA0\x80"));		  /* U+0800, smallest 3-byte */
	assert_true(U("\xE2\x82\xAC"));		  /* € */
	assert_true(U("\xED\x9F\xBF"));		  /* U+D7FF, just below surrogates */
	assert_true(U("\xEE\x80\x80"));		  /* U+E000, just above */
	assert_true(U("\xEF\xBF\xBF"));		  /* U+FFFF */
	assert_true(U("\xF0\x90\x80\x80"));	  /* U+10000, smallest 4-byte */
	assert_true(U("\xF0\x9F\x98\x80"));	  /* 😀 */
	assert_true(U("\xF4\x8F\xBF\xBF"));	  /* U+10FFFF, the largest */
	assert_true(U("Gr\xC3\xBC\xC3\x9F" "e \xE2\x82\xAC \xF0\x9F\x98\x80!"));
}

static void test_utf8_overlong(void **state)
{
	assert_false(U("\xC0\xAF"));	     /* '/' in 2 bytes */
	assert_false(U("\xC1\xBF"));
	assert_false(U("\xE0\x80\xAF"));     /* '/' in 3 bytes */
	assert_false(U("\xE0\x9F\xBF"));     /* U+07FF in 3 bytes */
	assert_false(U("\xF0\x80\x80\xAF")); /* '/' in 4 bytes */
	assert_false(U("\xF0\x8F\xBF\xBF")); /* U+FFFF in 4 bytes */
}

static void test_utf8_surrogates(void **state)
{
	assert_false(U("\xED\xA0\x80")); /* U+D800 */
	assert_false(U("\xED\xAF\xBF")); /* U+DBFF */
	assert_false(U("\xED\xB0\x80")); /* U+DC00 */
	assert_false(U("\xED\xBF\xBF")); /* U+DFFF */
	assert_false(U("\xED\xA0\xBD\xED\xB8\x80")); /* CESU-8 pair for U+1F600 */
}

static void test_utf8_above_max(void **state)
{
	assert_false(U("\xF4\x90\x80\x80")); /* U+110000 */
	assert_false(U("\xF5\x80\x80\x80"));
	assert_false(U("\xF7\xBF\xBF\xBF"));
	assert_false(U("\xF8\x88\x80\x80\x80")); /* old 5-byte form */
	assert_false(U("\xFC\x84\x80\x80\x80\x80"));
}

static void test_utf8_truncated(void **state)
{
	assert_false(U("\xC3"));
	assert_false(U("abc\xE2\x82"));
	assert_false(U("\xF0\x9F\x98"));
	assert_false(U("\xE2\x82x"));  /* continuation replaced by ASCII */
	assert_false(U("\xC3\xA9\xC3")); /* valid then truncated */
}

static void test_utf8_stray_bytes(void **state)
{
	assert_false(U("\x80"));
	assert_false(U("a\xBFz"));
	assert_false(U("\xFE"));
	assert_false(U("\xFF"));
}

static void test_utf8_length_limits_check(void **state)
{
	/* Only s[0..n) is examined: a truncated sequence past n does not count. */
	assert_true(utf8_valid("ab\xC3", 2));
	assert_false(utf8_valid("ab\xC3\xA9", 3));
}

static void test_utf8_first_invalid_offset(void **state)
{
	const char *s = "0123456789abcdefghij\xFFxyz"; /* past the 8-byte ASCII fast path */
	assert_int_equal(utf8_first_invalid(s, strlen(s)), 20);
	assert_int_equal(utf8_first_invalid("\xC3\xA9\xED\xA0\x80", 5), 2);
	assert_int_equal(utf8_first_invalid("abc", 3), 3);
	assert_int_equal(utf8_first_invalid("abcdefg\xF0\x9F\x98\x80xyz", 14), 14);
	assert_int_equal(utf8_first_invalid("abcdefg\xF0\x9F\x98", 10), 7);
}

/* utf8_repair of s (a literal), as a NUL-terminated string in out. */
static size_t repair(const char *s, size_t n, char *out, size_t *bad)
{
	size_t len = utf8_repair(s, n, NULL, NULL);
	assert_int_equal(utf8_repair(s, n, out, bad), len);
	out[len] = '\0';
	assert_true(utf8_valid(out, len));
	return len;
}

static void test_utf8_repair(void **state)
{
	char out[64];
	size_t bad = 99;
	repair("plain", 5, out, &bad);
	assert_string_equal(out, "plain");
	assert_int_equal(bad, 0);
	/* Latin-1: one stray byte, one replacement. */
	repair("Caf\xE9!", 5, out, &bad);
	assert_string_equal(out, "Caf\xEF\xBF\xBD!");
	assert_int_equal(bad, 1);
	/* A truncated sequence is one maximal subpart: one U+FFFD for 2 bytes. */
	repair("a\xE2\x82z", 4, out, &bad);
	assert_string_equal(out, "a\xEF\xBF\xBDz");
	assert_int_equal(bad, 2);
	/* Surrogate and overlong: the lead alone is the subpart, then each
	 * continuation byte on its own (Unicode's "maximal subpart" practice). */
	repair("\xED\xA0\x80", 3, out, &bad);
	assert_string_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	assert_int_equal(bad, 3);
	repair("\xC0\xAF", 2, out, &bad);
	assert_string_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD");
	/* Valid multibyte text around a bad byte is untouched; at the end too. */
	repair("\xC3\xA9\xFF\xF0\x9F\x98\x80\xF0\x9F", 9, out, &bad);
	assert_string_equal(out, "\xC3\xA9\xEF\xBF\xBD\xF0\x9F\x98\x80\xEF\xBF\xBD");
	assert_int_equal(bad, 3);
	assert_int_equal(utf8_repair("", 0, NULL, NULL), 0);
}

/* ==== uuid ================================================================== */

static void assert_uuid_v7_shape(const char *u)
{
	assert_int_equal(strlen(u), 36);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(u[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", u[i]));
	}
	assert_int_equal(u[14], '7'); /* version */
	assert_non_null(strchr("89ab", u[19])); /* RFC 9562 variant 10xx */
}

static void test_uuid_v7_format(void **state)
{
	char u[UUID_STR_LEN];
	assert_int_equal(uuid_v7(u), 0);
	assert_uuid_v7_shape(u);
	assert_true(uuid_valid(u, strlen(u)));
}

static void test_uuid_v7_timestamp(void **state)
{
	char u[UUID_STR_LEN];
	int64_t before = time_now_ms();
	assert_int_equal(uuid_v7(u), 0);
	int64_t after = time_now_ms();
	char hex[13];
	memcpy(hex, u, 8);
	memcpy(hex + 8, u + 9, 4);
	hex[12] = '\0';
	int64_t ts = (int64_t)strtoll(hex, NULL, 16);
	/* The counter may borrow a few ms ahead under heavy use, never behind. */
	assert_true(ts >= before - 1);
	assert_true(ts <= after + 1000);
}

static void test_uuid_v7_strictly_increasing(void **state)
{
	char prev[UUID_STR_LEN], cur[UUID_STR_LEN];
	assert_int_equal(uuid_v7(prev), 0);
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(uuid_v7(cur), 0);
		if (strcmp(prev, cur) >= 0)
			print_error("not increasing at %d: %s then %s\n", i, prev, cur);
		assert_true(strcmp(prev, cur) < 0);
		assert_int_equal(cur[14], '7');
		assert_non_null(strchr("89ab", cur[19]));
		memcpy(prev, cur, sizeof(cur));
	}
}

static void test_uuid_v7_random_part_differs(void **state)
{
	char a[UUID_STR_LEN], b[UUID_STR_LEN];
	assert_int_equal(uuid_v7(a), 0);
	assert_int_equal(uuid_v7(b), 0);
	/* The last 12 hex digits are random: equal would be a 1 in 2^48 event. */
	assert_string_not_equal(a + 24, b + 24);
}

static void test_uuid_valid(void **state)
{
	const char *lower = "0190f3a2-7b1c-7def-8a12-3456789abcde";
	const char *upper = "0190F3A2-7B1C-7DEF-8A12-3456789ABCDE";
	assert_true(uuid_valid(lower, 36));
	assert_true(uuid_valid(upper, 36));
	assert_true(uuid_valid("00000000-0000-0000-0000-000000000000", 36));
}

static void test_uuid_invalid(void **state)
{
	const char *ok = "0190f3a2-7b1c-7def-8a12-3456789abcde";
	assert_false(uuid_valid(ok, 35));
	assert_false(uuid_valid(ok, 0));
	assert_false(uuid_valid("0190f3a2-7b1c-7def-8a12-3456789abcdef", 37));
	assert_false(uuid_valid("0190f3a2-7b1c-7def-8a12-3456789abcdg", 36)); /* g */
	assert_false(uuid_valid("0190f3a2x7b1c-7def-8a12-3456789abcde", 36)); /* no hyphen */
	assert_false(uuid_valid("0190f3a27-b1c-7def-8a12-3456789abcde", 36)); /* moved */
	assert_false(uuid_valid("0190f3a2 7b1c 7def 8a12 3456789abcde", 36));
	assert_false(uuid_valid("{190f3a2-7b1c-7def-8a12-3456789abcd}", 36));
	assert_false(uuid_valid("0190f3a2-7b1c-7def-8a12-3456789abc\0e", 36));
}

static void test_random_bytes(void **state)
{
	unsigned char a[32] = { 0 }, b[32] = { 0 };
	assert_int_equal(random_bytes(a, sizeof(a)), 0);
	assert_int_equal(random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(random_bytes(a, 0), 0);
}

/* ==== cache ================================================================= */

static struct rcbuf *body(const char *s)
{
	struct rcbuf *r = rcbuf_new(s, strlen(s));
	assert_non_null(r);
	return r;
}

/* Puts a body and drops the caller's reference. */
static void put(struct cache *c, const char *key, int64_t version, const char *s)
{
	struct rcbuf *r = body(s);
	cache_put(c, key, version, r);
	rcbuf_unref(r);
}

/* 1 when key/version is cached with exactly the content `s`. */
static int has(struct cache *c, const char *key, int64_t version, const char *s)
{
	struct rcbuf *r = cache_get(c, key, version);
	if (!r)
		return 0;
	int same = r->n == strlen(s) && memcmp(r->data, s, r->n) == 0;
	rcbuf_unref(r);
	return same;
}

static void test_cache_put_get(void **state)
{
	struct cache *c = cache_new(1 << 20);
	assert_non_null(c);
	put(c, "book:1", 7, "{\"id\":1}");
	assert_true(has(c, "book:1", 7, "{\"id\":1}"));
	assert_int_equal(cache_bytes(c), 8 + CACHE_ENTRY_BYTES);
	cache_free(c);
}

static void test_cache_miss(void **state)
{
	struct cache *c = cache_new(1 << 20);
	assert_null(cache_get(c, "nothing", 1));
	put(c, "a", 1, "x");
	assert_null(cache_get(c, "b", 1));
	assert_null(cache_get(c, "", 1));
	cache_free(c);
}

static void test_cache_version_mismatch(void **state)
{
	struct cache *c = cache_new(1 << 20);
	put(c, "k", 3, "v3");
	assert_null(cache_get(c, "k", 2));
	assert_null(cache_get(c, "k", 4));
	assert_true(has(c, "k", 3, "v3"));
	cache_free(c);
}

static void test_cache_put_replaces_version(void **state)
{
	struct cache *c = cache_new(1 << 20);
	put(c, "k", 1, "old body");
	put(c, "k", 2, "new");
	assert_null(cache_get(c, "k", 1));
	assert_true(has(c, "k", 2, "new"));
	assert_int_equal(cache_bytes(c), 3 + CACHE_ENTRY_BYTES);
	cache_free(c);
}

static void test_cache_get_returns_new_reference(void **state)
{
	struct cache *c = cache_new(1 << 20);
	struct rcbuf *r = body("shared");
	cache_put(c, "k", 1, r);
	struct rcbuf *g = cache_get(c, "k", 1);
	assert_ptr_equal(g, r);
	assert_int_equal(atomic_load(&r->refs), 3); /* ours, the cache's, g */
	rcbuf_unref(g);
	assert_int_equal(atomic_load(&r->refs), 2);
	cache_drop(c, "k");
	assert_int_equal(atomic_load(&r->refs), 1);
	rcbuf_unref(r);
	cache_free(c);
}

static void test_cache_eviction_by_bytes(void **state)
{
	struct cache *c = cache_new(100 + 5 * CACHE_ENTRY_BYTES);
	put(c, "a", 1, "aaaaaaaaaaaaaaaaaaaa"); /* 20 bytes each */
	put(c, "b", 1, "bbbbbbbbbbbbbbbbbbbb");
	put(c, "c", 1, "cccccccccccccccccccc");
	put(c, "d", 1, "dddddddddddddddddddd");
	put(c, "e", 1, "eeeeeeeeeeeeeeeeeeee");
	assert_int_equal(cache_bytes(c), 100 + 5 * CACHE_ENTRY_BYTES);
	put(c, "f", 1, "ffffffffffffffffffff");
	assert_true(cache_bytes(c) <= 100 + 5 * CACHE_ENTRY_BYTES);
	assert_null(cache_get(c, "a", 1)); /* least recently used goes first */
	assert_true(has(c, "b", 1, "bbbbbbbbbbbbbbbbbbbb"));
	assert_true(has(c, "f", 1, "ffffffffffffffffffff"));
	cache_free(c);
}

static void test_cache_get_refreshes_lru(void **state)
{
	struct cache *c = cache_new(100 + 5 * CACHE_ENTRY_BYTES);
	put(c, "a", 1, "aaaaaaaaaaaaaaaaaaaa");
	put(c, "b", 1, "bbbbbbbbbbbbbbbbbbbb");
	put(c, "c", 1, "cccccccccccccccccccc");
	put(c, "d", 1, "dddddddddddddddddddd");
	put(c, "e", 1, "eeeeeeeeeeeeeeeeeeee");
	assert_true(has(c, "a", 1, "aaaaaaaaaaaaaaaaaaaa")); /* a is now the most recent */
	put(c, "f", 1, "ffffffffffffffffffff");
	assert_true(has(c, "a", 1, "aaaaaaaaaaaaaaaaaaaa"));
	assert_null(cache_get(c, "b", 1));
	cache_free(c);
}

static void test_cache_eviction_of_several(void **state)
{
	struct cache *c = cache_new(10 * (10 + CACHE_ENTRY_BYTES));
	for (int i = 0; i < 10; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		put(c, k, 1, "0123456789"); /* 10 bytes each, all fit */
	}
	assert_int_equal(cache_bytes(c), 10 * (10 + CACHE_ENTRY_BYTES));
	/* a body of 25 + CACHE_ENTRY_BYTES bytes needs the room of three entries */
	char big[25 + CACHE_ENTRY_BYTES + 1];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put(c, "big", 1, big);
	assert_true(cache_bytes(c) <= 10 * (10 + CACHE_ENTRY_BYTES));
	assert_null(cache_get(c, "k0", 1));
	assert_null(cache_get(c, "k1", 1));
	assert_null(cache_get(c, "k2", 1));
	assert_true(has(c, "k3", 1, "0123456789"));
	assert_true(has(c, "big", 1, big));
	cache_free(c);
}

static void test_cache_evicted_body_stays_alive(void **state)
{
	struct cache *c = cache_new(100 + 5 * CACHE_ENTRY_BYTES);
	put(c, "a", 1, "aaaaaaaaaaaaaaaaaaaa");
	struct rcbuf *held = cache_get(c, "a", 1);
	assert_non_null(held);
	for (int i = 0; i < 10; i++) {
		char k[16];
		snprintf(k, sizeof(k), "x%d", i);
		put(c, k, 1, "xxxxxxxxxxxxxxxxxxxx");
	}
	assert_null(cache_get(c, "a", 1));
	assert_memory_equal(held->data, "aaaaaaaaaaaaaaaaaaaa", 20);
	rcbuf_unref(held);
	cache_free(c);
}

static void test_cache_drop(void **state)
{
	struct cache *c = cache_new(1 << 20);
	put(c, "a", 1, "12345");
	put(c, "b", 1, "678");
	cache_drop(c, "a");
	assert_null(cache_get(c, "a", 1));
	assert_true(has(c, "b", 1, "678"));
	assert_int_equal(cache_bytes(c), 3 + CACHE_ENTRY_BYTES);
	cache_drop(c, "a");	    /* dropping twice is harmless */
	cache_drop(c, "missing");
	assert_int_equal(cache_bytes(c), 3 + CACHE_ENTRY_BYTES);
	cache_free(c);
}

static void test_cache_max_bytes_zero_stores_nothing(void **state)
{
	struct cache *c = cache_new(0);
	assert_non_null(c);
	put(c, "a", 1, "x");
	assert_null(cache_get(c, "a", 1));
	assert_int_equal(cache_bytes(c), 0);
	cache_drop(c, "a");
	assert_int_equal(cache_bytes(c), 0);
	cache_free(c);
	cache_free(NULL); /* like free(NULL) */
}

static void test_cache_many_entries(void **state)
{
	/* More entries than the initial hash table has buckets. */
	struct cache *c = cache_new(1 << 24);
	char k[32], v[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "book:%d", i);
		snprintf(v, sizeof(v), "body %d", i);
		put(c, k, i, v);
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "book:%d", i);
		snprintf(v, sizeof(v), "body %d", i);
		if (!has(c, k, i, v))
			print_error("missing %s\n", k);
		assert_true(has(c, k, i, v));
	}
	for (int i = 0; i < 5000; i += 2) {
		snprintf(k, sizeof(k), "book:%d", i);
		cache_drop(c, k);
	}
	assert_null(cache_get(c, "book:0", 0));
	assert_true(has(c, "book:1", 1, "body 1"));
	cache_free(c);
}

/* ==== json ================================================================== */

static void test_json_parse_object_ok(void **state)
{
	json_t *o = NULL;
	struct err e = { 0 };
	const char *s = "{\"title\": \"Book\", \"n\": 3}";
	assert_int_equal(json_parse_object(s, strlen(s), &o, &e), 0);
	assert_non_null(o);
	assert_true(json_is_object(o));
	assert_string_equal(json_string_value(json_object_get(o, "title")), "Book");
	json_decref(o);
}

static void test_json_parse_object_respects_length(void **state)
{
	json_t *o = NULL;
	struct err e = { 0 };
	const char *s = "{\"a\":1}garbage";
	assert_int_equal(json_parse_object(s, 7, &o, &e), 0);
	json_decref(o);
}

static void test_json_invalid_utf8(void **state)
{
	json_t *o = (json_t *)1;
	struct err e = { 0 };
	const char *s = "{\"title\": \"caf\xC3\"}";
	assert_int_equal(json_parse_object(s, strlen(s), &o, &e), ERR_BAD_REQUEST);
	assert_int_equal(e.code, ERR_BAD_REQUEST);
	assert_null(o);
	assert_contains(e.msg, "UTF-8");
}

static void test_json_surrogate_bytes_rejected(void **state)
{
	json_t *o = NULL;
	struct err e = { 0 };
	const char *s = "{\"t\": \"\xED\xA0\x80\"}";
	assert_int_equal(json_parse_object(s, strlen(s), &o, &e), ERR_BAD_REQUEST);
	assert_null(o);
}

static void test_json_malformed(void **state)
{
	json_t *o = NULL;
	struct err e = { 0 };
	const char *s = "{\"title\": ";
	assert_int_equal(json_parse_object(s, strlen(s), &o, &e), ERR_BAD_REQUEST);
	assert_null(o);
	assert_contains(e.msg, "malformed JSON");
	assert_contains(e.msg, "line 1");
}

static void test_json_malformed_trailing_comma(void **state)
{
	json_t *o = NULL;
	struct err e = { 0 };
	const char *s = "{\"a\": 1,}";
	assert_int_equal(json_parse_object(s, strlen(s), &o, &e), ERR_BAD_REQUEST);
	assert_null(o);
}

static void test_json_empty_body(void **state)
{
	json_t *o = NULL;
	struct err e = { 0 };
	assert_int_equal(json_parse_object("", 0, &o, &e), ERR_BAD_REQUEST);
	assert_null(o);
}

static void test_json_duplicate_keys(void **state)
{
	json_t *o = NULL;
	struct err e = { 0 };
	const char *s = "{\"a\": 1, \"a\": 2}";
	assert_int_equal(json_parse_object(s, strlen(s), &o, &e), ERR_BAD_REQUEST);
	assert_null(o);
}

static void test_json_array_is_invalid(void **state)
{
	json_t *o = NULL;
	struct err e = { 0 };
	const char *s = "[{\"a\": 1}]";
	assert_int_equal(json_parse_object(s, strlen(s), &o, &e), ERR_INVALID);
	assert_int_equal(e.code, ERR_INVALID);
	assert_null(o);
	assert_contains(e.msg, "object");
}

static void test_json_scalars_are_invalid(void **state)
{
	static const char *const bodies[] = { "42", "\"str\"", "null", "true" };
	for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
		json_t *o = NULL;
		struct err e = { 0 };
		assert_int_equal(json_parse_object(bodies[i], strlen(bodies[i]), &o, &e), ERR_INVALID);
		assert_null(o);
	}
}

/* Parses a literal object for the getter tests. */
static json_t *obj(const char *s)
{
	json_error_t je;
	json_t *o = json_loads(s, 0, &je);
	assert_non_null(o);
	return o;
}

static void test_jget_str_ok(void **state)
{
	json_t *o = obj("{\"title\": \"Dune\"}");
	struct err e = { 0 };
	const char *v = NULL;
	assert_int_equal(jget_str(o, "title", J_REQUIRED, 1, 100, &v, &e), 1);
	assert_string_equal(v, "Dune");
	assert_int_equal(e.code, ERR_OK);
	assert_int_equal(e.ndetails, 0);
	json_decref(o);
}

static void test_jget_str_required_missing(void **state)
{
	json_t *o = obj("{}");
	struct err e = { 0 };
	const char *v = "untouched";
	assert_int_equal(jget_str(o, "title", J_REQUIRED, 1, 100, &v, &e), -1);
	assert_string_equal(v, "untouched");
	assert_int_equal(e.code, ERR_INVALID);
	assert_int_equal(e.ndetails, 1);
	assert_string_equal(e.details[0].field, "title");
	assert_contains(e.details[0].message, "required");
	json_decref(o);
}

static void test_jget_str_required_null(void **state)
{
	json_t *o = obj("{\"title\": null}");
	struct err e = { 0 };
	const char *v = NULL;
	assert_int_equal(jget_str(o, "title", J_REQUIRED, 1, 100, &v, &e), -1);
	assert_string_equal(e.details[0].field, "title");
	json_decref(o);
}

static void test_jget_str_optional_missing_or_null(void **state)
{
	json_t *o = obj("{\"b\": null}");
	struct err e = { 0 };
	const char *v = NULL;
	assert_int_equal(jget_str(o, "a", J_OPTIONAL, 1, 100, &v, &e), 0);
	assert_int_equal(jget_str(o, "b", J_OPTIONAL, 1, 100, &v, &e), 0);
	assert_null(v);
	assert_int_equal(e.code, ERR_OK);
	assert_int_equal(e.ndetails, 0);
	json_decref(o);
}

static void test_jget_str_wrong_type(void **state)
{
	json_t *o = obj("{\"author\": 12}");
	struct err e = { 0 };
	const char *v = NULL;
	assert_int_equal(jget_str(o, "author", J_OPTIONAL, 0, 100, &v, &e), -1);
	assert_string_equal(e.details[0].field, "author");
	assert_contains(e.details[0].message, "string");
	json_decref(o);
}

static void test_jget_str_too_long(void **state)
{
	json_t *o = obj("{\"title\": \"abcdef\"}");
	struct err e = { 0 };
	const char *v = NULL;
	assert_int_equal(jget_str(o, "title", J_REQUIRED, 1, 5, &v, &e), -1);
	assert_string_equal(e.details[0].field, "title");
	assert_contains(e.details[0].message, "5");
	json_decref(o);
}

static void test_jget_str_empty(void **state)
{
	json_t *o = obj("{\"title\": \"\"}");
	struct err e = { 0 };
	const char *v = NULL;
	assert_int_equal(jget_str(o, "title", J_REQUIRED, 1, 5, &v, &e), -1);
	assert_string_equal(e.details[0].field, "title");
	assert_contains(e.details[0].message, "empty");
	json_decref(o);
}

static void test_jget_str_length_in_characters(void **state)
{
	/* Five characters, ten bytes: fits a 5-character limit. */
	json_t *o = obj("{\"t\": \"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\"}");
	struct err e = { 0 };
	const char *v = NULL;
	assert_int_equal(jget_str(o, "t", J_REQUIRED, 1, 5, &v, &e), 1);
	assert_int_equal(strlen(v), 10);
	assert_int_equal(jget_str(o, "t", J_REQUIRED, 1, 4, &v, &e), -1);
	json_decref(o);
}

static void test_jget_int_ok(void **state)
{
	json_t *o = obj("{\"year\": 1965}");
	struct err e = { 0 };
	long long v = 0;
	assert_int_equal(jget_int(o, "year", J_REQUIRED, 0, 3000, &v, &e), 1);
	assert_int_equal(v, 1965);
	assert_int_equal(e.ndetails, 0);
	json_decref(o);
}

static void test_jget_int_bounds_inclusive(void **state)
{
	json_t *o = obj("{\"lo\": 1, \"hi\": 10}");
	struct err e = { 0 };
	long long v = 0;
	assert_int_equal(jget_int(o, "lo", J_REQUIRED, 1, 10, &v, &e), 1);
	assert_int_equal(jget_int(o, "hi", J_REQUIRED, 1, 10, &v, &e), 1);
	assert_int_equal(v, 10);
	assert_int_equal(e.ndetails, 0);
	json_decref(o);
}

static void test_jget_int_out_of_range(void **state)
{
	json_t *o = obj("{\"position\": 0}");
	struct err e = { 0 };
	long long v = 99;
	assert_int_equal(jget_int(o, "position", J_REQUIRED, 1, 5000, &v, &e), -1);
	assert_int_equal(v, 99);
	assert_int_equal(e.code, ERR_INVALID);
	assert_string_equal(e.details[0].field, "position");
	assert_contains(e.details[0].message, "1");
	assert_contains(e.details[0].message, "5000");
	json_decref(o);
}

static void test_jget_int_not_integer(void **state)
{
	json_t *o = obj("{\"a\": 1.5, \"b\": \"3\", \"c\": true}");
	struct err e = { 0 };
	long long v = 0;
	assert_int_equal(jget_int(o, "a", J_REQUIRED, 0, 10, &v, &e), -1);
	assert_int_equal(jget_int(o, "b", J_REQUIRED, 0, 10, &v, &e), -1);
	assert_int_equal(jget_int(o, "c", J_REQUIRED, 0, 10, &v, &e), -1);
	assert_int_equal(e.ndetails, 3);
	assert_string_equal(e.details[0].field, "a");
	assert_string_equal(e.details[1].field, "b");
	assert_string_equal(e.details[2].field, "c");
	assert_contains(e.details[0].message, "integer");
	json_decref(o);
}

static void test_jget_int_required_and_optional(void **state)
{
	json_t *o = obj("{}");
	struct err e = { 0 };
	long long v = 0;
	assert_int_equal(jget_int(o, "n", J_OPTIONAL, 0, 10, &v, &e), 0);
	assert_int_equal(e.ndetails, 0);
	assert_int_equal(jget_int(o, "n", J_REQUIRED, 0, 10, &v, &e), -1);
	assert_string_equal(e.details[0].field, "n");
	assert_contains(e.details[0].message, "required");
	json_decref(o);
}

static void test_jget_errors_accumulate(void **state)
{
	json_t *o = obj("{\"title\": 5, \"year\": -1}");
	struct err e = { 0 };
	const char *s = NULL;
	long long n = 0;
	assert_int_equal(jget_str(o, "title", J_REQUIRED, 1, 100, &s, &e), -1);
	assert_int_equal(jget_int(o, "year", J_REQUIRED, 0, 3000, &n, &e), -1);
	assert_int_equal(jget_str(o, "author", J_REQUIRED, 1, 100, &s, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_int_equal(e.ndetails, 3);
	assert_string_equal(e.details[0].field, "title");
	assert_string_equal(e.details[1].field, "year");
	assert_string_equal(e.details[2].field, "author");
	json_decref(o);
}

static void test_jget_bool(void **state)
{
	json_t *o = obj("{\"t\": true, \"f\": false, \"s\": \"true\"}");
	struct err e = { 0 };
	int v = -1;
	assert_int_equal(jget_bool(o, "t", J_REQUIRED, &v, &e), 1);
	assert_int_equal(v, 1);
	assert_int_equal(jget_bool(o, "f", J_REQUIRED, &v, &e), 1);
	assert_int_equal(v, 0);
	assert_int_equal(jget_bool(o, "s", J_REQUIRED, &v, &e), -1);
	assert_string_equal(e.details[0].field, "s");
	json_decref(o);
}

static void test_jis_null_and_jstr_or_null(void **state)
{
	json_t *o = obj("{\"a\": null, \"b\": 1}");
	assert_true(jis_null(o, "a"));
	assert_false(jis_null(o, "b"));
	assert_false(jis_null(o, "missing"));
	json_decref(o);
	json_t *s = jstr_or_null("x");
	json_t *n = jstr_or_null(NULL);
	assert_true(json_is_string(s));
	assert_true(json_is_null(n));
	json_decref(s);
	json_decref(n);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, reset_mem, reset_mem)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_buf_append_and_terminate),
		T(test_buf_empty_append_allocates_terminated),
		T(test_buf_exactly_max_fits),
		T(test_buf_toobig_leaves_content),
		T(test_buf_toobig_on_empty),
		T(test_buf_max_zero),
		T(test_buf_huge_length_no_overflow),
		T(test_buf_growth_keeps_data),
		T(test_buf_printf_short),
		T(test_buf_printf_long),
		T(test_buf_printf_exactly_256),
		T(test_buf_printf_long_toobig_unchanged),
		T(test_buf_printf_short_toobig_unchanged),
		T(test_buf_steal_and_reset),
		T(test_buf_steal_empty),
		T(test_arena_alignment),
		T(test_arena_allocations_distinct_and_writable),
		T(test_arena_zero_size),
		T(test_arena_grow),
		T(test_arena_large_allocation),
		T(test_arena_large_first_allocation),
		T(test_arena_total),
		T(test_arena_reuse_after_free),
		T(test_arena_strndup),
		T(test_arena_printf),
		T(test_arena_printf_long),
		T(test_arena_printf_empty),
		T(test_mem_fail_arena_first_block),
		T(test_mem_fail_arena_new_block_keeps_old),
		T(test_mem_fail_arena_large),
		T(test_mem_fail_arena_printf_and_strdup),
		T(test_mem_fail_after_n_successes),
		T(test_mem_fail_buf_append),
		T(test_mem_fail_buf_first_alloc),
		T(test_mem_fail_buf_printf_long),
		T(test_mem_fail_disabled),
		T(test_mem_fail_xstrdup),
		T(test_utf8_ascii),
		T(test_utf8_valid_multibyte),
		T(test_utf8_overlong),
		T(test_utf8_surrogates),
		T(test_utf8_above_max),
		T(test_utf8_truncated),
		T(test_utf8_stray_bytes),
		T(test_utf8_length_limits_check),
		T(test_utf8_first_invalid_offset),
		T(test_utf8_repair),
		T(test_uuid_v7_format),
		T(test_uuid_v7_timestamp),
		T(test_uuid_v7_strictly_increasing),
		T(test_uuid_v7_random_part_differs),
		T(test_uuid_valid),
		T(test_uuid_invalid),
		T(test_random_bytes),
		T(test_cache_put_get),
		T(test_cache_miss),
		T(test_cache_version_mismatch),
		T(test_cache_put_replaces_version),
		T(test_cache_get_returns_new_reference),
		T(test_cache_eviction_by_bytes),
		T(test_cache_get_refreshes_lru),
		T(test_cache_eviction_of_several),
		T(test_cache_evicted_body_stays_alive),
		T(test_cache_drop),
		T(test_cache_max_bytes_zero_stores_nothing),
		T(test_cache_many_entries),
		T(test_json_parse_object_ok),
		T(test_json_parse_object_respects_length),
		T(test_json_invalid_utf8),
		T(test_json_surrogate_bytes_rejected),
		T(test_json_malformed),
		T(test_json_malformed_trailing_comma),
		T(test_json_empty_body),
		T(test_json_duplicate_keys),
		T(test_json_array_is_invalid),
		T(test_json_scalars_are_invalid),
		T(test_jget_str_ok),
		T(test_jget_str_required_missing),
		T(test_jget_str_required_null),
		T(test_jget_str_optional_missing_or_null),
		T(test_jget_str_wrong_type),
		T(test_jget_str_too_long),
		T(test_jget_str_empty),
		T(test_jget_str_length_in_characters),
		T(test_jget_int_ok),
		T(test_jget_int_bounds_inclusive),
		T(test_jget_int_out_of_range),
		T(test_jget_int_not_integer),
		T(test_jget_int_required_and_optional),
		T(test_jget_errors_accumulate),
		T(test_jget_bool),
		T(test_jis_null_and_jstr_or_null),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
