/* Unit tests for services/markdown: sections and anchors, word counts, plain
 * text, slugs and MDX stripping. */
#include "unit.h"

#include "core/mem.h"
#include "services/markdown.h"

struct fixture {
	struct arena arena;
	struct md_info info;
	struct buf out;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	arena_init(&f->arena, 4096);
	buf_init(&f->out, 1 << 20);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	mem_fail_after(-1);
	arena_free(&f->arena);
	buf_free(&f->out);
	free(f);
	return 0;
}

/* md_analyze on a string, asserting success. */
static struct md_info *analyze(void **state, const char *md)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	int rc = md_analyze(md, strlen(md), &f->arena, &f->info, &e);
	if (rc)
		print_error("md_analyze failed: %s\n", e.msg);
	assert_int_equal(rc, 0);
	return &f->info;
}

static const char *slug(void **state, const char *text)
{
	struct fixture *f = *state;
	buf_reset(&f->out);
	assert_int_equal(md_slug(text, strlen(text), &f->out), 0);
	return f->out.p ? f->out.p : "";
}

static const char *strip(void **state, const char *mdx)
{
	struct fixture *f = *state;
	buf_reset(&f->out);
	assert_int_equal(md_strip_mdx(mdx, strlen(mdx), &f->out), 0);
	return f->out.p ? f->out.p : "";
}

static void assert_section(const struct md_info *info, int i, int level, const char *anchor,
			   const char *heading)
{
	assert_true(i < info->nsections);
	assert_int_equal(info->sections[i].level, level);
	assert_string_equal(info->sections[i].anchor, anchor);
	assert_string_equal(info->sections[i].heading, heading);
}

/* ---- sections ------------------------------------------------------------- */

static void test_sections_levels(void **state)
{
	struct md_info *i = analyze(state, "# One\n\ntext\n\n## Two\n\n### Three\n\n###### Six\n");
	assert_int_equal(i->nsections, 4);
	assert_section(i, 0, 1, "one", "One");
	assert_section(i, 1, 2, "two", "Two");
	assert_section(i, 2, 3, "three", "Three");
	assert_section(i, 3, 6, "six", "Six");
}

static void test_setext_headings(void **state)
{
	struct md_info *i = analyze(state, "Big Title\n=========\n\nSmaller\n-------\n");
	assert_int_equal(i->nsections, 2);
	assert_section(i, 0, 1, "big-title", "Big Title");
	assert_section(i, 1, 2, "smaller", "Smaller");
}

static void test_anchor_punctuation_dropped(void **state)
{
	struct md_info *i = analyze(state, "## Hello World!\n");
	assert_int_equal(i->nsections, 1);
	assert_section(i, 0, 2, "hello-world", "Hello World!");
}

static void test_duplicate_anchor_suffixed(void **state)
{
	struct md_info *i = analyze(state, "# Intro\n\n## Hello World!\n\n## Hello World\n\n## hello world\n");
	assert_int_equal(i->nsections, 4);
	assert_string_equal(i->sections[1].anchor, "hello-world");
	assert_string_equal(i->sections[2].anchor, "hello-world-1");
	assert_string_equal(i->sections[3].anchor, "hello-world-2");
}

static void test_duplicate_across_levels(void **state)
{
	struct md_info *i = analyze(state, "# Setup\n\n### Setup\n");
	assert_string_equal(i->sections[0].anchor, "setup");
	assert_string_equal(i->sections[1].anchor, "setup-1");
}

static void test_explicit_id(void **state)
{
	struct md_info *i = analyze(state, "## Getting Started {#custom-id}\n");
	assert_int_equal(i->nsections, 1);
	assert_section(i, 0, 2, "custom-id", "Getting Started");
}

static void test_explicit_id_trailing_spaces(void **state)
{
	struct md_info *i = analyze(state, "## Install   {#install-it}   \n");
	assert_section(i, 0, 2, "install-it", "Install");
}

static void test_explicit_id_wins_over_duplicate_text(void **state)
{
	struct md_info *i = analyze(state, "## Usage\n\n## Usage {#usage-again}\n\n## Usage\n");
	assert_string_equal(i->sections[0].anchor, "usage");
	assert_string_equal(i->sections[1].anchor, "usage-again");
	assert_string_equal(i->sections[2].anchor, "usage-1");
}

static void test_braces_without_hash_not_an_id(void **state)
{
	struct md_info *i = analyze(state, "## Maps {key}\n");
	assert_section(i, 0, 2, "maps-key", "Maps {key}");
}

static void test_heading_with_code(void **state)
{
	struct md_info *i = analyze(state, "## The `main()` function\n");
	assert_section(i, 0, 2, "the-main-function", "The main() function");
}

static void test_heading_with_emphasis(void **state)
{
	struct md_info *i = analyze(state, "## *Very* __important__ ~~old~~ note\n");
	assert_section(i, 0, 2, "very-important-old-note", "Very important old note");
}

static void test_heading_with_link(void **state)
{
	struct md_info *i = analyze(state, "## See [the docs](https://example.com/x)\n");
	assert_section(i, 0, 2, "see-the-docs", "See the docs");
}

static void test_heading_non_ascii_kept(void **state)
{
	struct md_info *i = analyze(state, "## café au lait\n\n## 日本語のテキスト\n");
	assert_section(i, 0, 2, "café-au-lait", "café au lait");
	assert_section(i, 1, 2, "日本語のテキスト", "日本語のテキスト");
}

static void test_heading_in_code_block_is_not_a_section(void **state)
{
	struct md_info *i = analyze(state, "```\n# not a heading\n```\n\n    # indented code\n\n# Real\n");
	assert_int_equal(i->nsections, 1);
	assert_section(i, 0, 1, "real", "Real");
}

static void test_no_sections(void **state)
{
	struct md_info *i = analyze(state, "Just a paragraph.\n");
	assert_int_equal(i->nsections, 0);
	assert_null(i->first_h1);
}

static void test_many_sections_grow(void **state)
{
	struct fixture *f = *state;
	struct buf md;
	buf_init(&md, 1 << 20);
	for (int k = 0; k < 100; k++)
		assert_int_equal(buf_printf(&md, "## Part\n\nBody %d\n\n", k), 0);
	struct err e = { 0 };
	assert_int_equal(md_analyze(md.p, md.n, &f->arena, &f->info, &e), 0);
	assert_int_equal(f->info.nsections, 100);
	assert_string_equal(f->info.sections[0].anchor, "part");
	assert_string_equal(f->info.sections[1].anchor, "part-1");
	assert_string_equal(f->info.sections[99].anchor, "part-99");
	buf_free(&md);
}

static void test_sections_json(void **state)
{
	struct fixture *f = *state;
	struct md_info *i = analyze(state, "# A \"quoted\" title\n\n## Sub {#s}\n");
	char *json = md_sections_json(i, &f->arena);
	assert_non_null(json);
	assert_string_equal(json, "[{\"anchor\":\"a-quoted-title\",\"heading\":\"A \\\"quoted\\\" title\",\"level\":1},"
				  "{\"anchor\":\"s\",\"heading\":\"Sub\",\"level\":2}]");
}

static void test_sections_json_empty(void **state)
{
	struct fixture *f = *state;
	struct md_info *i = analyze(state, "no headings\n");
	char *json = md_sections_json(i, &f->arena);
	assert_non_null(json);
	assert_string_equal(json, "[]");
}

/* ---- first_h1 ------------------------------------------------------------- */

static void test_first_h1(void **state)
{
	struct md_info *i = analyze(state, "## Before\n\n# Main Title\n\n# Second\n");
	assert_non_null(i->first_h1);
	assert_string_equal(i->first_h1, "Main Title");
}

static void test_first_h1_without_explicit_id(void **state)
{
	struct md_info *i = analyze(state, "# Welcome {#welcome}\n");
	assert_string_equal(i->first_h1, "Welcome");
}

static void test_first_h1_setext(void **state)
{
	struct md_info *i = analyze(state, "Title *here*\n===\n");
	assert_string_equal(i->first_h1, "Title here");
}

static void test_first_h1_absent_with_only_h2(void **state)
{
	struct md_info *i = analyze(state, "## Only two\n\n### Three\n");
	assert_null(i->first_h1);
}

/* ---- word count and plain text -------------------------------------------- */

static void test_word_count_simple(void **state)
{
	assert_int_equal(analyze(state, "one two  three\n")->word_count, 3);
}

static void test_word_count_bold_syntax_not_counted(void **state)
{
	assert_int_equal(analyze(state, "**bold** text")->word_count, 2);
}

static void test_word_count_emphasis_inside_word(void **state)
{
	assert_int_equal(analyze(state, "un*believ*able")->word_count, 1);
}

static void test_word_count_markup_only(void **state)
{
	/* Rules, list bullets, heading markers and quote markers are not words. */
	assert_int_equal(analyze(state, "# Title\n\n---\n\n> quoted words\n\n- item\n* other\n")->word_count, 5);
}

static void test_word_count_links_and_images(void **state)
{
	assert_int_equal(analyze(state, "[click here](https://example.com/a/b) ![alt text](x.png)")->word_count, 4);
}

static void test_word_count_table(void **state)
{
	struct md_info *i = analyze(state, "| Name | Age |\n|------|-----|\n| Ann | 30 |\n| Bob | 41 |\n");
	assert_int_equal(i->word_count, 6);
}

static void test_word_count_table_cells_not_glued(void **state)
{
	struct md_info *i = analyze(state, "|a|b|\n|-|-|\n|c|d|\n");
	assert_int_equal(i->word_count, 4);
	assert_non_null(i->plain);
	assert_not_contains(i->plain, "ab");
	assert_not_contains(i->plain, "cd");
}

static void test_word_count_code_block(void **state)
{
	/* The code is counted, the fence and its info string are not. */
	struct md_info *i = analyze(state, "Intro.\n\n```python\nprint(x)\nreturn y\n```\n");
	assert_int_equal(i->word_count, 4);
	assert_not_contains(i->plain, "```");
	assert_not_contains(i->plain, "python");
}

static void test_word_count_inline_code(void **state)
{
	assert_int_equal(analyze(state, "Call `foo bar` now")->word_count, 4);
}

static void test_word_count_soft_break(void **state)
{
	assert_int_equal(analyze(state, "one\ntwo\nthree")->word_count, 3);
}

static void test_word_count_blocks_separated(void **state)
{
	struct md_info *i = analyze(state, "# Title\nFirst para.\n\n- a\n- b\n");
	assert_int_equal(i->word_count, 5);
}

static void test_word_count_empty(void **state)
{
	struct md_info *i = analyze(state, "");
	assert_int_equal(i->word_count, 0);
	assert_int_equal(i->nsections, 0);
	assert_non_null(i->plain);
	assert_int_equal(i->plain_len, 0);
}

static void test_word_count_non_ascii(void **state)
{
	assert_int_equal(analyze(state, "Grüße aus Köln — schön")->word_count, 5);
}

static void test_plain_text_blocks(void **state)
{
	struct md_info *i = analyze(state, "# Title\n\nPara *one*.\n\nPara two.\n");
	assert_string_equal(i->plain, "Title\nPara one.\nPara two.\n");
	assert_int_equal(i->plain_len, strlen(i->plain));
}

static void test_analyze_respects_length(void **state)
{
	struct fixture *f = *state;
	const char *md = "# Kept\n\n# Dropped\n";
	struct err e = { 0 };
	assert_int_equal(md_analyze(md, 7, &f->arena, &f->info, &e), 0);
	assert_int_equal(f->info.nsections, 1);
	assert_string_equal(f->info.first_h1, "Kept");
}

static void test_analyze_out_of_memory_is_internal(void **state)
{
	struct fixture *f = *state;
	const char *md = "# Title\n\nSome words here.\n\n## Sub\n\nMore.\n";
	/* Whichever allocation fails, the result is a clean success or an
	 * out-of-memory error, never "too large" for a tiny chapter. */
	for (long k = 0; k < 40; k++) {
		struct err e = { 0 };
		struct md_info info;
		mem_fail_after(k);
		int rc = md_analyze(md, strlen(md), &f->arena, &info, &e);
		mem_fail_after(-1);
		if (rc != 0 && rc != ERR_INTERNAL)
			print_error("fail_after(%ld): rc=%d msg=%s\n", k, rc, e.msg);
		assert_true(rc == 0 || rc == ERR_INTERNAL);
		if (rc == 0)
			assert_int_equal(info.nsections, 2);
	}
}

/* ---- md_slug -------------------------------------------------------------- */

static void test_slug_basic(void **state)
{
	assert_string_equal(slug(state, "Hello World!"), "hello-world");
}

static void test_slug_keeps_dash_and_underscore(void **state)
{
	assert_string_equal(slug(state, "snake_case and-kebab"), "snake_case-and-kebab");
}

static void test_slug_punctuation(void **state)
{
	assert_string_equal(slug(state, "What's new? (v2.0)"), "whats-new-v20");
}

static void test_slug_multiple_spaces_kept(void **state)
{
	assert_string_equal(slug(state, "C++ & Rust"), "c--rust");
}

static void test_slug_digits(void **state)
{
	assert_string_equal(slug(state, "Chapter 10"), "chapter-10");
}

static void test_slug_non_ascii(void **state)
{
	assert_string_equal(slug(state, "naïve café"), "naïve-café");
}

static void test_slug_non_ascii_uppercase_lowercased(void **state)
{
	/* GitHub's slugger lowercases all letters, not only ASCII ones: a link to
	 * "#über-äpfel" made by Docusaurus must land on this heading. */
	assert_string_equal(slug(state, "Über Äpfel"), "über-äpfel");
}

static void test_slug_unicode_punctuation_dropped(void **state)
{
	/* GitHub's slugger drops Unicode punctuation (U+2000..U+206F) like the
	 * typographic apostrophe, as it drops ASCII "'". */
	assert_string_equal(slug(state, "What\u2019s New"), "whats-new");
}

static void test_slug_empty(void **state)
{
	assert_string_equal(slug(state, ""), "");
	assert_string_equal(slug(state, "!!!"), "");
}

static void test_slug_respects_length(void **state)
{
	struct fixture *f = *state;
	buf_reset(&f->out);
	assert_int_equal(md_slug("Hello World", 5, &f->out), 0);
	assert_string_equal(f->out.p, "hello");
}

static void test_slug_too_big(void **state)
{
	struct buf small;
	buf_init(&small, 4);
	assert_int_equal(md_slug("abcdefgh", 8, &small), BUF_TOOBIG);
	buf_free(&small);
}

/* ---- md_strip_mdx --------------------------------------------------------- */

static void test_mdx_plain_markdown_unchanged(void **state)
{
	const char *md = "# Title\n\nSome *text* with [a link](x.md).\n\n- item\n";
	assert_string_equal(strip(state, md), md);
}

static void test_mdx_import_lines_removed(void **state)
{
	const char *out = strip(state, "import Tabs from '@theme/Tabs';\n"
				       "import TabItem from '@theme/TabItem';\n"
				       "\n"
				       "Hello\n");
	assert_not_contains(out, "import");
	assert_not_contains(out, "@theme");
	assert_contains(out, "Hello\n");
}

static void test_mdx_export_line_removed(void **state)
{
	const char *out = strip(state, "export const toc = [];\n\nText\n");
	assert_not_contains(out, "export");
	assert_not_contains(out, "toc");
	assert_contains(out, "Text\n");
}

static void test_mdx_multiline_export_block_removed(void **state)
{
	const char *out = strip(state, "export const meta = {\n"
				       "  title: 'x',\n"
				       "  tags: ['a', 'b'],\n"
				       "};\n"
				       "\n"
				       "# Real heading\n"
				       "\n"
				       "Body\n");
	assert_not_contains(out, "export");
	assert_not_contains(out, "title:");
	assert_not_contains(out, "tags");
	assert_not_contains(out, "};");
	assert_contains(out, "# Real heading\n");
	assert_contains(out, "Body\n");
}

static void test_mdx_import_word_in_prose_kept(void **state)
{
	/* Not at the start of a line: not an import statement. */
	const char *out = strip(state, "Do not import anything.\n");
	assert_string_equal(out, "Do not import anything.\n");
}

static void test_mdx_tabs_removed_inner_text_kept(void **state)
{
	const char *out = strip(state, "<Tabs>\n"
				       "<TabItem value=\"x\" label=\"X\">\n"
				       "\n"
				       "Inner text for X\n"
				       "\n"
				       "</TabItem>\n"
				       "<TabItem value='y'>\n"
				       "Inner Y\n"
				       "</TabItem>\n"
				       "</Tabs>\n");
	assert_not_contains(out, "Tabs");
	assert_not_contains(out, "TabItem");
	assert_not_contains(out, "value=");
	assert_contains(out, "Inner text for X\n");
	assert_contains(out, "Inner Y\n");
}

static void test_mdx_tag_only_lines_dropped_entirely(void **state)
{
	assert_string_equal(strip(state, "<Tabs>\nA\n</Tabs>\n"), "A\n");
}

static void test_mdx_inline_tags_removed(void **state)
{
	assert_string_equal(strip(state, "Press <Kbd>Ctrl</Kbd> now.\n"), "Press Ctrl now.\n");
}

static void test_mdx_self_closing_tag_removed(void **state)
{
	assert_string_equal(strip(state, "Before <Image src=\"a.png\" alt=\"a > b\" /> after\n"),
			    "Before  after\n");
}

static void test_mdx_tag_with_expression_attribute(void **state)
{
	assert_string_equal(strip(state, "<Demo onClick={() => go(1)} items={[1, 2]}>\nX\n</Demo>\n"),
			    "X\n");
}

static void test_mdx_fragments_removed(void **state)
{
	assert_string_equal(strip(state, "<>\nInside\n</>\n"), "Inside\n");
}

static void test_mdx_jsx_in_fenced_code_kept(void **state)
{
	const char *in = "```jsx\n"
			 "import Tabs from '@theme/Tabs';\n"
			 "<Tabs>\n"
			 "  {/* a comment */}\n"
			 "</Tabs>\n"
			 "```\n";
	assert_string_equal(strip(state, in), in);
}

static void test_mdx_jsx_in_tilde_fence_kept(void **state)
{
	const char *in = "~~~~\n<Tabs>\n```\n<Still in code />\n~~~~\nAfter <B>x</B>\n";
	assert_string_equal(strip(state, in), "~~~~\n<Tabs>\n```\n<Still in code />\n~~~~\nAfter x\n");
}

static void test_mdx_jsx_in_inline_code_kept(void **state)
{
	assert_string_equal(strip(state, "Use `<Tabs>` and `{/* x */}` here.\n"),
			    "Use `<Tabs>` and `{/* x */}` here.\n");
}

static void test_mdx_double_backtick_code_kept(void **state)
{
	/* A code span opened by two backticks ends at two backticks. */
	const char *in = "Use ``<Tabs>`` and `` `<TabItem>` `` to group.\n";
	assert_string_equal(strip(state, in), in);
}

static void test_mdx_html_kept(void **state)
{
	const char *in = "Line one<br>\n<div class=\"note\">\nText\n</div>\n<br/>\n";
	assert_string_equal(strip(state, in), in);
}

static void test_mdx_comment_removed(void **state)
{
	assert_string_equal(strip(state, "Before {/* hidden */} after\n"), "Before  after\n");
}

static void test_mdx_comment_only_line_dropped(void **state)
{
	assert_string_equal(strip(state, "A\n{/* note to self */}\nB\n"), "A\nB\n");
}

static void test_mdx_multiline_comment_removed(void **state)
{
	const char *out = strip(state, "A\n{/*\n  secret\n  stuff\n*/}\nB\n");
	assert_not_contains(out, "secret");
	assert_not_contains(out, "stuff");
	assert_not_contains(out, "*/");
	assert_string_equal(out, "A\nB\n");
}

static void test_mdx_lowercase_and_comparisons_kept(void **state)
{
	const char *in = "if a < b and c > d\n";
	assert_string_equal(strip(state, in), in);
}

static void test_mdx_blank_lines_kept(void **state)
{
	assert_string_equal(strip(state, "A\n\nB\n"), "A\n\nB\n");
}

static void test_mdx_no_trailing_newline(void **state)
{
	assert_string_equal(strip(state, "A\nB"), "A\nB\n");
}

static void test_mdx_empty(void **state)
{
	assert_string_equal(strip(state, ""), "");
}

/* A component whose attributes span lines, with arrays, and strings that
 * hold `>`, `}` and `]`: the whole opening tag goes, the children stay. */
static void test_mdx_multiline_attributes(void **state)
{
	const char *out = strip(state, "# Intro\n"
				       "\n"
				       "<WhatYouWillLearn goals={[\n"
				       "  \"Compare ROS 2 > ROS 1\",\n"
				       "  'Close a brace } or a bracket ]',\n"
				       "  \"Keep {this}\"\n"
				       "]}>\n"
				       "\n"
				       "Children are content.\n"
				       "\n"
				       "</WhatYouWillLearn>\n"
				       "Next\n");
	assert_string_equal(out, "# Intro\n\n\nChildren are content.\n\nNext\n");
}

static void test_mdx_multiline_self_closing(void **state)
{
	assert_string_equal(strip(state, "Before\n"
					 "<Figure\n"
					 "  src=\"/img/a.png\"\n"
					 "  alt=\"a > b\"\n"
					 "  caption='}'\n"
					 "/>\n"
					 "After\n"),
			    "Before\nAfter\n");
}

static void test_mdx_multiline_tag_mid_line(void **state)
{
	assert_string_equal(strip(state, "Intro <Badge\n  text=\"new\"\n/> more\n"), "Intro  more\n");
}

static void test_mdx_nested_objects_and_templates(void **state)
{
	const char *out = strip(state, "<Card data={{ a: { b: \"}\" }, c: `x ${y} >`, d: '>' }}\n"
				       "      onClick={() => { if (a > b) go('}'); /* > */ }}\n"
				       "      title=\"t\">\n"
				       "Card text\n"
				       "</Card>\n");
	assert_string_equal(out, "Card text\n");
}

static void test_mdx_nested_components(void **state)
{
	const char *out = strip(state, "<Outer title=\"o\">\n"
				       "<Inner\n"
				       "  x={1}\n"
				       "  y={[<Icon name=\"a\" />, \"b\"]}\n"
				       ">\n"
				       "Deep *text*\n"
				       "</Inner>\n"
				       "</Outer>\n");
	assert_string_equal(out, "Deep *text*\n");
}

static void test_mdx_multiline_jsx_in_fences_kept(void **state)
{
	/* In a list item, fences are indented: still code. */
	const char *in = "```jsx\n"
			 "<Foo\n"
			 "  bar={[1, 2]}\n"
			 "/>\n"
			 "```\n"
			 "1. Step\n"
			 "\n"
			 "    ```jsx\n"
			 "    <Tabs groupId=\"os\">\n"
			 "    </Tabs>\n"
			 "    ```\n";
	assert_string_equal(strip(state, in), in);
}

static void test_mdx_prose_angle_brackets_kept(void **state)
{
	/* Not tags: punctuation where attributes would be, a blank line before
	 * any `>`, a tag that never closes. */
	const char *in = "Compare a <B, and c > d.\n"
			 "x <Y then\n"
			 "\n"
			 "more > less\n"
			 "<Foo a={\n"
			 "rest of the text\n";
	assert_string_equal(strip(state, in), in);
}

static void test_mdx_multiline_import_removed(void **state)
{
	assert_string_equal(strip(state, "import {\n  A,\n  B,\n} from './x';\nText\n"), "Text\n");
	/* Prose that starts like a statement costs its own line only. */
	assert_string_equal(strip(state, "import the data.\nThen clean it.\n"), "Then clean it.\n");
}

static void test_mdx_export_block_with_blank_lines_removed(void **state)
{
	const char *out = strip(state, "export const meta = {\n"
				       "  a: 1,\n"
				       "\n"
				       "  b: [\n"
				       "    '}',\n"
				       "  ],\n"
				       "};\n"
				       "export const x =\n"
				       "  5;\n"
				       "\n"
				       "# H\n");
	assert_string_equal(out, "\n# H\n");
}

static void test_mdx_many_unclosed_tags_linear(void **state)
{
	/* Every `<` looks like a tag that never ends: each byte is looked at a
	 * bounded number of times, and nothing is lost. */
	struct fixture *f = *state;
	size_t n = (size_t)1 << 20;
	char *in = malloc(n + 1);
	assert_non_null(in);
	for (size_t i = 0; i < n; i += 4)
		memcpy(in + i, "<A {", 4);
	in[n] = '\0';
	buf_free(&f->out);
	buf_init(&f->out, (size_t)4 << 20);
	assert_int_equal(md_strip_mdx(in, n, &f->out), 0);
	assert_int_equal(f->out.n, n + 1);
	assert_memory_equal(f->out.p, in, n);
	free(in);
}

static void test_mdx_too_big(void **state)
{
	struct buf small;
	buf_init(&small, 8);
	assert_int_equal(md_strip_mdx("hello world\n", 12, &small), BUF_TOOBIG);
	buf_free(&small);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_sections_levels),
		T(test_setext_headings),
		T(test_anchor_punctuation_dropped),
		T(test_duplicate_anchor_suffixed),
		T(test_duplicate_across_levels),
		T(test_explicit_id),
		T(test_explicit_id_trailing_spaces),
		T(test_explicit_id_wins_over_duplicate_text),
		T(test_braces_without_hash_not_an_id),
		T(test_heading_with_code),
		T(test_heading_with_emphasis),
		T(test_heading_with_link),
		T(test_heading_non_ascii_kept),
		T(test_heading_in_code_block_is_not_a_section),
		T(test_no_sections),
		T(test_many_sections_grow),
		T(test_sections_json),
		T(test_sections_json_empty),
		T(test_first_h1),
		T(test_first_h1_without_explicit_id),
		T(test_first_h1_setext),
		T(test_first_h1_absent_with_only_h2),
		T(test_word_count_simple),
		T(test_word_count_bold_syntax_not_counted),
		T(test_word_count_emphasis_inside_word),
		T(test_word_count_markup_only),
		T(test_word_count_links_and_images),
		T(test_word_count_table),
		T(test_word_count_table_cells_not_glued),
		T(test_word_count_code_block),
		T(test_word_count_inline_code),
		T(test_word_count_soft_break),
		T(test_word_count_blocks_separated),
		T(test_word_count_empty),
		T(test_word_count_non_ascii),
		T(test_plain_text_blocks),
		T(test_analyze_respects_length),
		T(test_analyze_out_of_memory_is_internal),
		T(test_slug_basic),
		T(test_slug_keeps_dash_and_underscore),
		T(test_slug_punctuation),
		T(test_slug_multiple_spaces_kept),
		T(test_slug_digits),
		T(test_slug_non_ascii),
		T(test_slug_non_ascii_uppercase_lowercased),
		T(test_slug_unicode_punctuation_dropped),
		T(test_slug_empty),
		T(test_slug_respects_length),
		T(test_slug_too_big),
		T(test_mdx_plain_markdown_unchanged),
		T(test_mdx_import_lines_removed),
		T(test_mdx_export_line_removed),
		T(test_mdx_multiline_export_block_removed),
		T(test_mdx_import_word_in_prose_kept),
		T(test_mdx_tabs_removed_inner_text_kept),
		T(test_mdx_tag_only_lines_dropped_entirely),
		T(test_mdx_inline_tags_removed),
		T(test_mdx_self_closing_tag_removed),
		T(test_mdx_tag_with_expression_attribute),
		T(test_mdx_fragments_removed),
		T(test_mdx_jsx_in_fenced_code_kept),
		T(test_mdx_jsx_in_tilde_fence_kept),
		T(test_mdx_jsx_in_inline_code_kept),
		T(test_mdx_double_backtick_code_kept),
		T(test_mdx_html_kept),
		T(test_mdx_comment_removed),
		T(test_mdx_comment_only_line_dropped),
		T(test_mdx_multiline_comment_removed),
		T(test_mdx_lowercase_and_comparisons_kept),
		T(test_mdx_blank_lines_kept),
		T(test_mdx_no_trailing_newline),
		T(test_mdx_empty),
		T(test_mdx_too_big),
		T(test_mdx_multiline_attributes),
		T(test_mdx_multiline_self_closing),
		T(test_mdx_multiline_tag_mid_line),
		T(test_mdx_nested_objects_and_templates),
		T(test_mdx_nested_components),
		T(test_mdx_multiline_jsx_in_fences_kept),
		T(test_mdx_prose_angle_brackets_kept),
		T(test_mdx_multiline_import_removed),
		T(test_mdx_export_block_with_blank_lines_removed),
		T(test_mdx_many_unclosed_tags_linear),
	};
	return cmocka_run_group_tests_name("markdown", tests, NULL, NULL);
}
