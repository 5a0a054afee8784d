/* Unit tests for services/mdprotect: what is protected, the round trip
 * through a simulated model, and broken model outputs rejected. */
#include "unit.h"

#include "core/buf.h"
#include "services/mdprotect.h"

struct fixture {
	struct arena a;
	struct md_protected p;
	struct err e;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	arena_init(&f->a, 4096);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	arena_free(&f->a);
	free(f);
	return 0;
}

static const struct md_glossary_term glossary[] = {
	{ "rclpy", NULL },
	{ "ROS 2", NULL },
	{ "node", "نوڈ" },
};

static const char *protect_g(void **state, const char *md, const struct md_glossary_term *g, int ng)
{
	struct fixture *f = *state;
	int rc = md_protect(&f->a, md, strlen(md), g, ng, &f->p, &f->e);
	if (rc)
		print_error("md_protect: %s\n", f->e.msg);
	assert_int_equal(rc, 0);
	return f->p.text;
}

static const char *protect(void **state, const char *md)
{
	return protect_g(state, md, NULL, 0);
}

/* A "model": uppercases the ASCII letters outside placeholders. */
static char *shout(const char *s)
{
	char *o = strdup(s);
	int in = 0;
	for (size_t i = 0; o[i]; i++) {
		if (!memcmp(o + i, "\xE2\x9F\xA6", 3))
			in = 1;
		else if (!memcmp(o + i, "\xE2\x9F\xA7", 3))
			in = 0;
		else if (!in && o[i] >= 'a' && o[i] <= 'z')
			o[i] = (char)(o[i] - 'a' + 'A');
	}
	return o;
}

static int restore_rc(void **state, const char *answer, char **out)
{
	struct fixture *f = *state;
	err_clear(&f->e);
	return md_restore(&f->a, &f->p, answer, strlen(answer), out, &f->e);
}

static char *restore_ok(void **state, const char *answer)
{
	struct fixture *f = *state;
	char *out = NULL;
	int rc = restore_rc(state, answer, &out);
	if (rc)
		print_error("md_restore: %s\nanswer:\n%s\n", f->e.msg, answer);
	assert_int_equal(rc, 0);
	return out;
}

static void restore_fails(void **state, const char *answer, const char *why)
{
	struct fixture *f = *state;
	char *out = NULL;
	assert_int_equal(restore_rc(state, answer, &out), ERR_INVALID);
	assert_contains(f->e.msg, why);
	assert_null(out);
}

/* Protect, restore the protected text unchanged: the source comes back. */
static int round_trip_identity(void **state, const char *md)
{
	const char *t = protect(state, md);
	char *back = restore_ok(state, t);
	assert_string_equal(back, md);
	return 0;
}

static const char *const code_fenced = "```python title=\"a.py\"\ndef f(x):\n    return x  # a [link](x) and `code`\n```";
static const char *const code_tilde = "~~~~\n```\nnested fence\n```\n~~~~";
static const char *const code_indented = "    int main(void) { return 0; }\n    /* $x$ <b> */";

static void test_code_blocks(void **state)
{
	char md[1024];
	snprintf(md, sizeof(md), "# Code\n\nSome text.\n\n%s\n\nMore text.\n\n%s\n\nand\n\n%s\n\n- item\n\n  ```c\n  x++;\n  ```\n\n> ```\n> quoted\n> ```\n",
		 code_fenced, code_tilde, code_indented);
	const char *t = protect(state, md);
	assert_not_contains(t, "def f");
	assert_not_contains(t, "nested fence");
	assert_not_contains(t, "int main");
	assert_not_contains(t, "x++");
	assert_not_contains(t, "quoted");
	assert_not_contains(t, "```");
	char *up = shout(t);
	char *back = restore_ok(state, up);
	assert_contains(back, code_fenced);
	assert_contains(back, code_tilde);
	assert_contains(back, code_indented);
	assert_contains(back, "  ```c\n  x++;\n  ```");
	assert_contains(back, "> ```\n> quoted\n> ```");
	assert_contains(back, "SOME TEXT.");
	free(up);
	round_trip_identity(state, md);
}

static void test_inline(void **state)
{
	const char *md = "Use `printf` or ``a ` b`` here, see [the docs](https://x.org/a_(b) \"Title\") and "
			 "![a cat](img/cat.png). Visit <https://example.com/x> or https://bare.example.org/path?q=1. "
			 "Mail <me@example.com>. Footnote[^1] and [full][ref] and [ref].\n\n"
			 "[ref]: https://ref.example \"Ref\"\n[^1]: The note text.\n";
	const char *t = protect(state, md);
	assert_not_contains(t, "printf");
	assert_not_contains(t, "a ` b");
	assert_contains(t, "[the docs]\xE2\x9F\xA6");
	assert_not_contains(t, "x.org");
	assert_contains(t, "![a cat]\xE2\x9F\xA6");
	assert_not_contains(t, "cat.png");
	assert_not_contains(t, "example.com");
	assert_not_contains(t, "bare.example.org");
	assert_contains(t, "\xE2\x9F\xA7. Mail"); /* the final '.' is not the URL's */
	assert_not_contains(t, "[^1]");
	assert_not_contains(t, "[ref]");
	assert_not_contains(t, "ref.example");
	assert_contains(t, "The note text.");
	char *up = shout(t);
	char *back = restore_ok(state, up);
	assert_contains(back, "[THE DOCS](https://x.org/a_(b) \"Title\")");
	assert_contains(back, "`printf`");
	assert_contains(back, "[FULL][ref]");
	assert_contains(back, "[ref]: https://ref.example \"Ref\"");
	free(up);
	round_trip_identity(state, md);
}

static void test_html_jsx(void **state)
{
	const char *md = "import Tabs from '@theme/Tabs';\nimport TabItem from '@theme/TabItem';\n\n"
			 "Text with <kbd>Ctrl</kbd> and <br/> and <!-- a comment -->.\n\n"
			 "<Tabs\n  groupId=\"os\"\n  values={[{label: 'a > b', value: \"}\"}]}>\n<TabItem value=\"linux\">\n\n"
			 "Install it on Linux.\n\n</TabItem>\n</Tabs>\n\n<>fragment</>\n\n"
			 "if a < b and c > d then\n";
	const char *t = protect(state, md);
	assert_not_contains(t, "import");
	assert_not_contains(t, "kbd");
	assert_contains(t, "Ctrl");
	assert_not_contains(t, "comment");
	assert_not_contains(t, "groupId");
	assert_not_contains(t, "TabItem");
	assert_contains(t, "Install it on Linux.");
	assert_contains(t, "fragment");
	assert_contains(t, "if a < b and c > d then");
	char *up = shout(t);
	char *back = restore_ok(state, up);
	assert_contains(back, "<Tabs\n  groupId=\"os\"\n  values={[{label: 'a > b', value: \"}\"}]}>");
	assert_contains(back, "INSTALL IT ON LINUX.");
	free(up);
	round_trip_identity(state, md);
}

static void test_admonitions(void **state)
{
	const char *md = ":::note Remember this\n\nA note.\n\n::::tip[Nested]\n\n:::danger\nInner.\n:::\n\n::::\n\n:::\n\n"
			 ":::audience{level=\"beginner\"}\nFor beginners.\n:::\n\n- item\n\n  :::info\n  In a list.\n  :::\n";
	const char *t = protect(state, md);
	assert_not_contains(t, ":::");
	assert_not_contains(t, "note Remember");
	assert_not_contains(t, "danger");
	assert_not_contains(t, "audience");
	assert_not_contains(t, "beginner\"");
	assert_contains(t, " Remember this");
	assert_contains(t, "[Nested]");
	assert_contains(t, "For beginners.");
	char *up = shout(t);
	char *back = restore_ok(state, up);
	assert_contains(back, ":::note REMEMBER THIS\n");
	assert_contains(back, ":::audience{level=\"beginner\"}\nFOR BEGINNERS.\n:::\n");
	assert_contains(back, "  :::info\n  IN A LIST.\n  :::\n");
	free(up);
	round_trip_identity(state, md);
}

static void test_math_and_prices(void **state)
{
	const char *md = "Euler: $e^{i\\pi} + 1 = 0$ and $x$.\n\n$$\n\\int_0^1 x\\,dx = \\frac12\n$$\n\n"
			 "It costs $3.50 and $4, or $5-$10 a month; \\$x\\$ is escaped. Inline $$a+b$$ too.\n\n"
			 "Costs $3.50, and the variable $y$ is math.\n";
	const char *t = protect(state, md);
	assert_not_contains(t, "\\pi");
	assert_not_contains(t, "$x$");
	assert_not_contains(t, "\\int");
	assert_not_contains(t, "a+b");
	assert_contains(t, "It costs $3.50 and $4, or $5-$10 a month; \\$x\\$ is escaped.");
	assert_contains(t, "Costs $3.50, and the variable \xE2\x9F\xA6");
	assert_not_contains(t, "$y$");
	char *up = shout(t);
	char *back = restore_ok(state, up);
	assert_contains(back, "$e^{i\\pi} + 1 = 0$");
	assert_contains(back, "$$\n\\int_0^1 x\\,dx = \\frac12\n$$");
	assert_contains(back, "IT COSTS $3.50");
	free(up);
	round_trip_identity(state, md);
}

static void test_headings_and_anchors(void **state)
{
	const char *md = "# Title {#custom-id}\n\nText.\n\n## Second ##\n\n### Third {#third}\n\nSetext {#setext}\n======\n";
	const char *t = protect(state, md);
	assert_not_contains(t, "custom-id");
	assert_not_contains(t, "{#third}");
	assert_not_contains(t, "{#setext}");
	char *up = shout(t);
	char *back = restore_ok(state, up);
	assert_contains(back, "# TITLE {#custom-id}\n");
	assert_contains(back, "### THIRD {#third}\n");
	assert_contains(back, "SETEXT {#setext}\n");
	free(up);
	round_trip_identity(state, md);
}

static void test_glossary(void **state)
{
	const char *md = "## The node {#the-node}\n\nA ROS 2 node uses rclpy; nodes and subnode are words, `node` is code.\n";
	const char *t = protect_g(state, md, glossary, (int)ARRAY_LEN(glossary));
	assert_not_contains(t, "rclpy");
	assert_not_contains(t, "ROS 2");
	assert_contains(t, "nodes and subnode");
	char *up = shout(t);
	char *back = restore_ok(state, up);
	assert_string_equal(back, "## THE نوڈ {#the-node}\n\nA ROS 2 نوڈ USES rclpy; NODES AND SUBNODE ARE WORDS, `node` IS CODE.\n");
	free(up);
}

static void test_cjk_urdu(void **state)
{
	const char *md = "## 安装 {#install}\n\n运行 `pip install rclpy` 然后打开 https://docs.ros.org。\n\n"
			 "یہ ایک `node` ہے اور [دستاویز](https://ur.example/x) دیکھیں۔ قیمت $3.50 ہے۔\n";
	const char *t = protect_g(state, md, glossary, (int)ARRAY_LEN(glossary));
	assert_not_contains(t, "pip install");
	assert_not_contains(t, "docs.ros.org");
	assert_contains(t, "[دستاویز]\xE2\x9F\xA6");
	assert_contains(t, "$3.50");
	char *back = restore_ok(state, t);
	assert_contains(back, "https://docs.ros.org。");
	assert_string_equal(back, md); /* no glossary term occurs outside code */
	/* A model writing Urdu may use Eastern Arabic digits and spaces. */
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b, 1 << 20);
	const char *s = t;
	const char *o;
	while ((o = strstr(s, "\xE2\x9F\xA6"))) {
		assert_int_equal(buf_append(&b, s, (size_t)(o - s)), 0);
		const char *c = strstr(o, "\xE2\x9F\xA7");
		assert_int_equal(buf_puts(&b, "\xE2\x9F\xA6 "), 0);
		for (const char *d = o + 3; d < c; d++) {
			char u[3] = { (char)0xDB, (char)(0xB0 + (*d - '0')), 0 };
			assert_int_equal(buf_puts(&b, u), 0);
		}
		assert_int_equal(buf_puts(&b, " \xE2\x9F\xA7"), 0);
		s = c + 3;
	}
	assert_int_equal(buf_puts(&b, s), 0);
	assert_string_equal(restore_ok(state, b.p), md);
	buf_free(&b);
	UNUSED(f);
}

static void test_edge_inputs(void **state)
{
	round_trip_identity(state, "");
	round_trip_identity(state, "Brackets ⟦1⟧ and ⟦ in the source, ⟧ too.\n");
	round_trip_identity(state, "CRLF\r\n\r\n```\r\ncode\r\n```\r\n\r\n# H {#h}\r\n");
	round_trip_identity(state, "```\nunclosed fence\n\n");
	round_trip_identity(state, "`unclosed span\n\n<div unclosed=\"\n\n$ no math\n");
	round_trip_identity(state, "<pre>\n  keep *this*\n</pre>\n\nand <script>x</script>\n");
	const char *t = protect(state, "<pre>\n  keep *this*\n</pre>\n");
	assert_not_contains(t, "keep");

	struct fixture *f = *state;
	size_t n = MD_PROTECT_MAX_BYTES + 1;
	char *big = malloc(n);
	memset(big, 'a', n);
	assert_int_equal(md_protect(&f->a, big, n, NULL, 0, &f->p, &f->e), ERR_TOO_LARGE);
	/* Too many placeholders. */
	for (size_t i = 0; i + 3 < n; i += 4)
		memcpy(big + i, "`x` ", 4);
	assert_int_equal(md_protect(&f->a, big, MD_PROTECT_MAX_BYTES, NULL, 0, &f->p, &f->e), ERR_TOO_LARGE);
	free(big);
	assert_int_equal(md_protect(&f->a, "a\xFF", 2, NULL, 0, &f->p, &f->e), ERR_BAD_REQUEST);
	assert_contains(md_protect_instructions(), "\xE2\x9F\xA6" "1" "\xE2\x9F\xA7");
}

/* ---- broken model outputs ---- */

static const char *const doc = "# Guide {#guide}\n\nRun `make` first.\n\n```sh\nmake test\n```\n\n"
			       ":::tip\nSee [docs](https://d.example).\n:::\n\n## Next {#next}\n\nDone.\n";

/* The protected text of `doc` with `from` replaced by `to` (first occurrence). */
static char *edit(const char *t, const char *from, const char *to)
{
	const char *at = strstr(t, from);
	assert_non_null(at);
	size_t n = strlen(t) - strlen(from) + strlen(to);
	char *o = malloc(n + 1);
	size_t pre = (size_t)(at - t);
	memcpy(o, t, pre);
	memcpy(o + pre, to, strlen(to));
	memcpy(o + pre + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
	return o;
}

static void broken(void **state, const char *from, const char *to, const char *why)
{
	struct fixture *f = *state;
	char *a = edit(f->p.text, from, to);
	restore_fails(state, a, why);
	free(a);
}

static void test_broken_outputs(void **state)
{
	const char *t = protect(state, doc);
	/* ⟦1⟧ anchor, ⟦2⟧ `make`, ⟦3⟧ code block, ⟦4⟧ :::tip, ⟦5⟧ link, ⟦6⟧ :::, ⟦7⟧ anchor */
	assert_int_equal(((struct fixture *)*state)->p.nslots, 7);
	assert_contains(t, "Run \xE2\x9F\xA6" "2\xE2\x9F\xA7 first.");
	broken(state, "\xE2\x9F\xA6" "2\xE2\x9F\xA7", "", "placeholder \xE2\x9F\xA6" "2\xE2\x9F\xA7 missing");
	broken(state, "first.", "first \xE2\x9F\xA6" "2\xE2\x9F\xA7.", "placeholder \xE2\x9F\xA6" "2\xE2\x9F\xA7 duplicated");
	broken(state, "Done.", "Done \xE2\x9F\xA6" "9\xE2\x9F\xA7.", "placeholder \xE2\x9F\xA6" "9\xE2\x9F\xA7 invented");
	broken(state, "Done.", "Done \xE2\x9F\xA6 oops.", "stray");
	broken(state, "Done.", "Done.\n\n```\nextra\n```", "fence count 2 != 1");
	broken(state, "\xE2\x9F\xA6" "3\xE2\x9F\xA7\n", "\xE2\x9F\xA6" "3\xE2\x9F\xA7 and text\n", "no longer ends its line");
	broken(state, "\n\xE2\x9F\xA6" "3\xE2\x9F\xA7", "\nSo \xE2\x9F\xA6" "3\xE2\x9F\xA7", "no longer starts its line");
	broken(state, "\n\xE2\x9F\xA6" "4\xE2\x9F\xA7", "\nSo \xE2\x9F\xA6" "4\xE2\x9F\xA7", "(admonition marker) no longer starts its line");
	broken(state, "## Next", "### Next", "heading 2 level 3 != 2");
	broken(state, "## Next", "Next", "heading count 1 != 2");
	broken(state, "Next \xE2\x9F\xA6" "7\xE2\x9F\xA7", "Next\n\n\xE2\x9F\xA6" "7\xE2\x9F\xA7", "heading 2 lost its anchor");
	broken(state, "# Guide \xE2\x9F\xA6" "1\xE2\x9F\xA7", "# Guide \xE2\x9F\xA6" "1\xE2\x9F\xA7 extra", "heading 1 lost its anchor");
	broken(state, "Done.", "Done [x](y).", "link count 2 != 1");
	broken(state, "Done.", "Done \xFF.", "not UTF-8");
	/* And the faithful answer passes. */
	char *up = shout(t);
	char *back = restore_ok(state, up);
	assert_contains(back, "```sh\nmake test\n```");
	assert_contains(back, "# GUIDE {#guide}");
	assert_contains(back, "SEE [DOCS](https://d.example).");
	free(up);
	/* A retry restores another answer against the same protection. */
	assert_string_equal(restore_ok(state, t), doc);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_code_blocks), T(test_inline), T(test_html_jsx), T(test_admonitions),
		T(test_math_and_prices), T(test_headings_and_anchors), T(test_glossary), T(test_cjk_urdu),
		T(test_edge_inputs), T(test_broken_outputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
