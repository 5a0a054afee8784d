/* Unit tests for providers/importer: plain-text and single-Markdown splitting,
 * and Docusaurus-style folders built in a temporary directory. */
#include "unit.h"

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "providers/importer.h"

struct fixture {
	char dir[64];
	struct import_book book;
	int loaded; /* book needs import_book_free */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/bookd-import-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->loaded)
		import_book_free(&f->book);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Writes dir/rel (creating parent folders) with `n` bytes of `text`. */
static void write_n(struct fixture *f, const char *rel, const char *text, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	for (char *p = path + strlen(f->dir) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
			*p = '/';
		}
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static void write_file(struct fixture *f, const char *rel, const char *text)
{
	write_n(f, rel, text, strlen(text));
}

static void make_dir(struct fixture *f, const char *rel)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	assert_int_equal(mkdir(path, 0700), 0);
}

/* import_load of dir/rel (rel "" = the temp dir itself); returns the code. */
static int load(struct fixture *f, const char *rel, struct err *e)
{
	char path[512];
	snprintf(path, sizeof(path), "%s%s%s", f->dir, *rel ? "/" : "", rel);
	if (f->loaded)
		import_book_free(&f->book);
	int rc = import_load(path, &f->book, e);
	f->loaded = 1;
	return rc;
}

static void load_ok(struct fixture *f, const char *rel)
{
	struct err e = { 0 };
	int rc = load(f, rel, &e);
	if (rc)
		print_error("import_load failed: %s\n", e.msg);
	assert_int_equal(rc, 0);
}

/* An empty book for import_text / import_markdown_file. */
static struct import_book *fresh_book(struct fixture *f)
{
	if (f->loaded)
		import_book_free(&f->book);
	memset(&f->book, 0, sizeof(f->book));
	arena_init(&f->book.arena, 4096);
	f->loaded = 1;
	return &f->book;
}

static int split_text(struct fixture *f, const char *text, struct err *e)
{
	return import_text("book.txt", text, strlen(text), fresh_book(f), e);
}

static int split_md(struct fixture *f, const char *text, struct err *e)
{
	return import_markdown_file("book.md", text, strlen(text), fresh_book(f), e);
}

static void assert_chapter(const struct import_book *b, int i, const char *title, const char *key)
{
	assert_true(i < b->nchapters);
	assert_string_equal(b->chapters[i].title, title);
	if (key)
		assert_string_equal(b->chapters[i].source_key, key);
	assert_int_equal(b->chapters[i].len, strlen(b->chapters[i].markdown));
}

/* ==== import_text =========================================================== */

static void test_text_chapters_split(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "My Great Book\n"
				       "by Someone\n"
				       "\n"
				       "Chapter 1: The Beginning\n"
				       "It was a dark night.\n"
				       "\n"
				       "Chapter 2: The Middle\n"
				       "More text.\n",
				    &e),
			 0);
	struct import_book *b = &f->book;
	assert_int_equal(b->nchapters, 2);
	assert_chapter(b, 0, "The Beginning", "chapter-1");
	assert_chapter(b, 1, "The Middle", "chapter-2");
	assert_contains(b->chapters[0].markdown, "It was a dark night.");
	assert_not_contains(b->chapters[0].markdown, "Chapter");
	assert_not_contains(b->chapters[0].markdown, "More text");
	assert_contains(b->chapters[1].markdown, "More text.");
}

static void test_text_title_from_first_line(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "\n\n   The Title Line\nsubtitle\nChapter 1\nx\n", &e), 0);
	assert_non_null(f->book.title);
	assert_string_equal(f->book.title, "The Title Line");
}

static void test_text_front_matter_not_in_chapters(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "Title\nPreface text\nChapter 1: A\nbody\n", &e), 0);
	assert_int_equal(f->book.nchapters, 1);
	assert_not_contains(f->book.chapters[0].markdown, "Preface");
}

static void test_text_existing_title_kept(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	struct import_book *b = fresh_book(f);
	b->title = "Preset";
	const char *t = "First line\nChapter 1\nx\n";
	assert_int_equal(import_text("b.txt", t, strlen(t), b, &e), 0);
	assert_string_equal(b->title, "Preset");
}

static void test_text_chapter_without_title(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "Book\nChapter 7\nSeven.\nCHAPTER 8.\nEight.\n", &e), 0);
	assert_int_equal(f->book.nchapters, 2);
	assert_chapter(&f->book, 0, "Chapter 7", "chapter-1");
	assert_chapter(&f->book, 1, "CHAPTER 8", "chapter-2");
}

static void test_text_roman_numerals(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "Book\n"
				       "Chapter IV\nfour\n"
				       "Chapter V. The Fifth\nfive\n"
				       "chapter xii - Twelve\ntwelve\n",
				    &e),
			 0);
	struct import_book *b = &f->book;
	assert_int_equal(b->nchapters, 3);
	assert_chapter(b, 0, "Chapter IV", NULL);
	assert_chapter(b, 1, "The Fifth", NULL);
	assert_chapter(b, 2, "Twelve", NULL);
	assert_contains(b->chapters[0].markdown, "four");
}

static void test_text_separators(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "B\nChapter 1 - Dash\na\nChapter 2. Dot\nb\nChapter 3:Colon\nc\n", &e), 0);
	assert_int_equal(f->book.nchapters, 3);
	assert_chapter(&f->book, 0, "Dash", NULL);
	assert_chapter(&f->book, 1, "Dot", NULL);
	assert_chapter(&f->book, 2, "Colon", NULL);
}

static void test_text_prose_mentioning_chapter_not_split(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "B\nChapter 1: Start\n"
				       "Chapter and verse were quoted.\n"
				       "Chapter 12b is not a heading.\n"
				       "Chapters 3 and 4 either.\n",
				    &e),
			 0);
	assert_int_equal(f->book.nchapters, 1);
	assert_contains(f->book.chapters[0].markdown, "Chapter and verse");
	assert_contains(f->book.chapters[0].markdown, "Chapter 12b");
	assert_contains(f->book.chapters[0].markdown, "Chapters 3 and 4");
}

static void test_text_indentation_removed(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "B\nChapter 1\n    Indented paragraph.\n\tTabbed.\n", &e), 0);
	assert_string_equal(f->book.chapters[0].markdown, "Indented paragraph.\nTabbed.\n");
}

static void test_text_crlf(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "Book\r\nChapter 1: One\r\nline\r\n", &e), 0);
	assert_chapter(&f->book, 0, "One", NULL);
	assert_string_equal(f->book.chapters[0].markdown, "line\n");
	assert_string_equal(f->book.title, "Book");
}

static void test_text_empty_chapter_kept(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "B\nChapter 1\nChapter 2\nbody\n", &e), 0);
	assert_int_equal(f->book.nchapters, 2);
	assert_int_equal(f->book.chapters[0].len, 0);
}

static void test_text_last_chapter_without_final_newline(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	int rc = split_text(f, "Book\nChapter 1: One\nfirst\nChapter 2: Two\nlast line", &e);
	if (rc)
		print_error("import_text failed: %s\n", e.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(f->book.nchapters, 2);
	assert_chapter(&f->book, 1, "Two", "chapter-2");
	assert_contains(f->book.chapters[1].markdown, "last line");
}

static void test_text_single_chapter_without_final_newline(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	int rc = split_text(f, "Chapter 1: Only\nthe body", &e);
	if (rc)
		print_error("import_text failed: %s\n", e.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(f->book.nchapters, 1);
}

static void test_text_no_chapters(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "Just some prose.\nNo chapter headings at all.\n", &e), ERR_INVALID);
	assert_int_equal(e.code, ERR_INVALID);
	assert_contains(e.msg, "book.txt");
	assert_contains(e.msg, "no chapters");
	assert_int_equal(f->book.nchapters, 0);
}

static void test_text_empty(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_text(f, "", &e), ERR_INVALID);
}

/* ==== import_markdown_file ================================================== */

static void test_md_split_at_h1(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "# One\n\nFirst.\n\n## Sub\n\nStill one.\n\n# Two\n\nSecond.\n", &e), 0);
	struct import_book *b = &f->book;
	assert_int_equal(b->nchapters, 2);
	assert_chapter(b, 0, "One", "chapter-1");
	assert_chapter(b, 1, "Two", "chapter-2");
	assert_contains(b->chapters[0].markdown, "## Sub");
	assert_contains(b->chapters[0].markdown, "Still one.");
	assert_not_contains(b->chapters[0].markdown, "Second.");
	assert_contains(b->chapters[1].markdown, "# Two");
}

static void test_md_h1_in_code_fence_not_split(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "# Real\n"
				     "\n"
				     "```bash\n"
				     "# a shell comment\n"
				     "```\n"
				     "~~~\n"
				     "# another\n"
				     "~~~\n"
				     "# Next\n"
				     "text\n",
				  &e),
			 0);
	assert_int_equal(f->book.nchapters, 2);
	assert_chapter(&f->book, 0, "Real", NULL);
	assert_contains(f->book.chapters[0].markdown, "# a shell comment");
	assert_contains(f->book.chapters[0].markdown, "# another");
	assert_chapter(&f->book, 1, "Next", NULL);
}

static void test_md_intro_before_first_h1(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "Some preface.\n\n# Chapter A\nbody\n", &e), 0);
	assert_int_equal(f->book.nchapters, 2);
	assert_chapter(&f->book, 0, "Introduction", "chapter-1");
	assert_contains(f->book.chapters[0].markdown, "Some preface.");
	assert_chapter(&f->book, 1, "Chapter A", "chapter-2");
}

static void test_md_blank_before_first_h1_ignored(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "\n\n  \n# Only\nbody\n", &e), 0);
	assert_int_equal(f->book.nchapters, 1);
	assert_chapter(&f->book, 0, "Only", "chapter-1");
}

static void test_md_no_h1_single_chapter(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "## Not a split\n\ntext\n", &e), 0);
	assert_int_equal(f->book.nchapters, 1);
	assert_chapter(&f->book, 0, "Introduction", NULL);
}

static void test_md_front_matter_title(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "---\ntitle: \"The Book\"\nauthor: x\n---\nOpening words.\n\n# One\nx\n", &e),
			 0);
	assert_string_equal(f->book.title, "The Book");
	assert_int_equal(f->book.nchapters, 2);
	/* Front matter title names the untitled opening chapter, not "Introduction". */
	assert_chapter(&f->book, 0, "The Book", NULL);
	assert_not_contains(f->book.chapters[0].markdown, "---");
	assert_not_contains(f->book.chapters[0].markdown, "author");
}

static void test_md_mdx_stripped(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "import X from './x';\n\n# A\n\n<Note>\nkept\n</Note>\n", &e), 0);
	assert_int_equal(f->book.nchapters, 1);
	assert_not_contains(f->book.chapters[0].markdown, "import");
	assert_not_contains(f->book.chapters[0].markdown, "Note");
	assert_contains(f->book.chapters[0].markdown, "kept");
}

static void test_md_title_strips_closing_hashes(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "# Closed heading ##\nx\n", &e), 0);
	assert_chapter(&f->book, 0, "Closed heading", NULL);
}

static void test_md_title_keeps_hash_inside_word(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	/* CommonMark: a closing sequence needs a space before it; "C#" is text. */
	assert_int_equal(split_md(f, "# Learning C#\nx\n", &e), 0);
	assert_chapter(&f->book, 0, "Learning C#", NULL);
}

static void test_md_empty(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(split_md(f, "", &e), ERR_INVALID);
	assert_contains(e.msg, "book.md");
	assert_int_equal(split_md(f, "\n  \n", &e), ERR_INVALID);
}

/* ==== import_load: folders ================================================== */

static void test_folder_front_matter_title(void **state)
{
	struct fixture *f = *state;
	write_file(f, "intro.md", "---\ntitle: Welcome Aboard\n---\n# Ignored Heading\n\nHello.\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 1);
	assert_chapter(&f->book, 0, "Welcome Aboard", "intro.md");
	assert_not_contains(f->book.chapters[0].markdown, "title:");
	assert_not_contains(f->book.chapters[0].markdown, "---");
	assert_contains(f->book.chapters[0].markdown, "Hello.");
}

static void test_folder_front_matter_quoted_title(void **state)
{
	struct fixture *f = *state;
	write_file(f, "a.md", "---\ntitle: 'Part: One'\n---\nx\n");
	load_ok(f, "");
	assert_chapter(&f->book, 0, "Part: One", "a.md");
}

static void test_folder_title_from_first_heading(void **state)
{
	struct fixture *f = *state;
	write_file(f, "page.md", "Some intro line.\n\n## Second level\n\n# First Level One\n\n# Later\n");
	load_ok(f, "");
	assert_chapter(&f->book, 0, "First Level One", "page.md");
}

static void test_folder_heading_in_code_not_title(void **state)
{
	struct fixture *f = *state;
	write_file(f, "page.md", "```sh\n# not the title\n```\n\n# Real Title\n");
	load_ok(f, "");
	assert_chapter(&f->book, 0, "Real Title", NULL);
}

static void test_folder_title_from_file_name(void **state)
{
	struct fixture *f = *state;
	write_file(f, "03-getting_started.md", "No headings here.\n");
	load_ok(f, "");
	/* Only the order prefix and extension go; the rest is verbatim. */
	assert_chapter(&f->book, 0, "getting_started", "03-getting_started.md");
}

static void test_folder_sidebar_position_order(void **state)
{
	struct fixture *f = *state;
	write_file(f, "a.md", "---\nsidebar_position: 3\n---\n# A\n");
	write_file(f, "b.md", "---\nsidebar_position: 1\n---\n# B\n");
	write_file(f, "c.md", "---\nsidebar_position: 2\n---\n# C\n");
	write_file(f, "0-unpositioned.md", "# U\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 4);
	assert_chapter(&f->book, 0, "B", "b.md");
	assert_chapter(&f->book, 1, "C", "c.md");
	assert_chapter(&f->book, 2, "A", "a.md");
	/* Files without a position come after those with one. */
	assert_chapter(&f->book, 3, "U", "0-unpositioned.md");
}

static void test_folder_fractional_positions(void **state)
{
	struct fixture *f = *state;
	write_file(f, "x.md", "---\nsidebar_position: 2\n---\n# X\n");
	write_file(f, "y.md", "---\nsidebar_position: 1.5\n---\n# Y\n");
	load_ok(f, "");
	assert_chapter(&f->book, 0, "Y", NULL);
	assert_chapter(&f->book, 1, "X", NULL);
}

static void test_folder_name_order_without_positions(void **state)
{
	struct fixture *f = *state;
	write_file(f, "02-b.md", "# Two\n");
	write_file(f, "10-c.md", "# Ten\n");
	write_file(f, "01-a.md", "# One\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 3);
	assert_chapter(&f->book, 0, "One", "01-a.md");
	assert_chapter(&f->book, 1, "Two", "02-b.md");
	assert_chapter(&f->book, 2, "Ten", "10-c.md");
}

static void test_folder_category_position_order(void **state)
{
	struct fixture *f = *state;
	write_file(f, "zeta/_category_.json", "{\"label\": \"Zeta\", \"position\": 1}");
	write_file(f, "zeta/z.md", "# Z\n");
	write_file(f, "alpha/_category_.json", "{\"position\": 2}");
	write_file(f, "alpha/a.md", "# A\n");
	write_file(f, "mid.md", "---\nsidebar_position: 1.5\n---\n# Mid\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 3);
	assert_chapter(&f->book, 0, "Z", "zeta/z.md");
	assert_chapter(&f->book, 1, "Mid", "mid.md");
	assert_chapter(&f->book, 2, "A", "alpha/a.md");
}

static void test_folder_category_yml_position(void **state)
{
	struct fixture *f = *state;
	write_file(f, "b/_category_.yml", "label: B\nposition: 1\n");
	write_file(f, "b/x.md", "# BX\n");
	write_file(f, "a/_category_.yml", "position: 2\n");
	write_file(f, "a/x.md", "# AX\n");
	load_ok(f, "");
	assert_chapter(&f->book, 0, "BX", "b/x.md");
	assert_chapter(&f->book, 1, "AX", "a/x.md");
}

static void test_folder_nested_order_within_folder(void **state)
{
	struct fixture *f = *state;
	write_file(f, "guide/_category_.json", "{\"position\": 1}");
	write_file(f, "guide/second.md", "---\nsidebar_position: 2\n---\n# Second\n");
	write_file(f, "guide/first.md", "---\nsidebar_position: 1\n---\n# First\n");
	write_file(f, "guide/deeper/leaf.md", "# Leaf\n");
	write_file(f, "outro.md", "---\nsidebar_position: 9\n---\n# Outro\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 4);
	assert_chapter(&f->book, 0, "First", "guide/first.md");
	assert_chapter(&f->book, 1, "Second", "guide/second.md");
	assert_chapter(&f->book, 2, "Leaf", "guide/deeper/leaf.md");
	assert_chapter(&f->book, 3, "Outro", "outro.md");
}

static void test_folder_draft_skipped(void **state)
{
	struct fixture *f = *state;
	write_file(f, "a.md", "# Published\n");
	write_file(f, "b.md", "---\ndraft: true\n---\n# Draft\n");
	write_file(f, "c.md", "---\ndraft: false\n---\n# Not Draft\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 2);
	assert_chapter(&f->book, 0, "Published", NULL);
	assert_chapter(&f->book, 1, "Not Draft", NULL);
}

static void test_folder_partials_hidden_and_others_skipped(void **state)
{
	struct fixture *f = *state;
	write_file(f, "_partials/snippet.md", "# Partial\n");
	write_file(f, "_included.mdx", "# Underscore\n");
	write_file(f, ".hidden.md", "# Hidden\n");
	write_file(f, ".git/x.md", "# Git\n");
	write_file(f, "node_modules/pkg/readme.md", "# Module\n");
	write_file(f, "notes.txt", "Chapter 1\nnot markdown\n");
	write_file(f, "image.png", "\x89PNG");
	write_file(f, "real.md", "# Real\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 1);
	assert_chapter(&f->book, 0, "Real", "real.md");
}

static void test_folder_extensions(void **state)
{
	struct fixture *f = *state;
	write_file(f, "a.md", "# MD\n");
	write_file(f, "b.mdx", "# MDX\n");
	write_file(f, "c.markdown", "# MARKDOWN\n");
	write_file(f, "d.MD", "# UPPER\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 4);
}

static void test_folder_mdx_cleaned(void **state)
{
	struct fixture *f = *state;
	write_file(f, "tabs.mdx", "---\ntitle: Tabs\n---\n"
				  "import Tabs from '@theme/Tabs';\n"
				  "import TabItem from '@theme/TabItem';\n"
				  "\n"
				  "<Tabs>\n<TabItem value=\"a\">\n\nInside A\n\n</TabItem>\n</Tabs>\n");
	load_ok(f, "");
	const char *md = f->book.chapters[0].markdown;
	assert_not_contains(md, "import");
	assert_not_contains(md, "<Tabs>");
	assert_not_contains(md, "TabItem");
	assert_contains(md, "Inside A");
	assert_int_equal(md[0] != '\n', 1); /* leading blank lines left by stripping are trimmed */
}

static void test_folder_bom_dropped(void **state)
{
	struct fixture *f = *state;
	write_file(f, "a.md", "\xEF\xBB\xBF---\ntitle: With BOM\n---\ntext\n");
	load_ok(f, "");
	assert_chapter(&f->book, 0, "With BOM", NULL);
	assert_int_equal((unsigned char)f->book.chapters[0].markdown[0], 't');
}

static void test_folder_book_json(void **state)
{
	struct fixture *f = *state;
	write_file(f, "book.json", "{\"title\": \"The Manual\", \"author\": \"Ann Writer\", "
				   "\"language\": \"de\", \"isbns\": [\"978-0-306-40615-7\", \"0-8044-2957-X\", 5]}");
	write_file(f, "a.md", "# A\n");
	load_ok(f, "");
	struct import_book *b = &f->book;
	assert_string_equal(b->title, "The Manual");
	assert_string_equal(b->author, "Ann Writer");
	assert_string_equal(b->language, "de");
	assert_int_equal(b->nisbns, 2);
	assert_string_equal(b->isbns[0], "978-0-306-40615-7");
	assert_string_equal(b->isbns[1], "0-8044-2957-X");
	assert_non_null(b->isbn_source);
	assert_contains(b->isbn_source, "book.json");
	assert_int_equal(b->nchapters, 1);
}

static void test_folder_book_json_null_fields(void **state)
{
	struct fixture *f = *state;
	make_dir(f, "my-great-book");
	write_file(f, "my-great-book/book.json", "{\"title\": null, \"author\": null}");
	write_file(f, "my-great-book/a.md", "# A\n");
	load_ok(f, "my-great-book");
	assert_null(f->book.author);
	assert_string_equal(f->book.title, "my-great-book");
}

static void test_folder_book_json_wrong_type(void **state)
{
	struct fixture *f = *state;
	write_file(f, "book.json", "{\"author\": [\"a\", \"b\"]}");
	write_file(f, "a.md", "# A\n");
	struct err e = { 0 };
	assert_int_equal(load(f, "", &e), ERR_INVALID);
	assert_contains(e.msg, "author");
	assert_contains(e.msg, "book.json");
}

static void test_folder_book_json_malformed(void **state)
{
	struct fixture *f = *state;
	write_file(f, "book.json", "{\"title\": ");
	write_file(f, "a.md", "# A\n");
	struct err e = { 0 };
	assert_int_equal(load(f, "", &e), ERR_INVALID);
	assert_contains(e.msg, "book.json");
}

static void test_folder_title_from_folder_name(void **state)
{
	struct fixture *f = *state;
	write_file(f, "01-my_folder-book/a.md", "# A\n");
	load_ok(f, "01-my_folder-book/");
	assert_string_equal(f->book.title, "my_folder-book");
}

static void assert_warning(const struct import_book *b, int i, const char *file, const char *action,
			   const char *msg_part)
{
	assert_true(i < b->nwarnings);
	assert_string_equal(b->warnings[i].file, file);
	assert_string_equal(b->warnings[i].action, action);
	assert_contains(b->warnings[i].message, msg_part);
}

static void test_folder_invalid_utf8_cleaned(void **state)
{
	struct fixture *f = *state;
	write_file(f, "good.md", "# Good\n");
	write_file(f, "sub/bad.md", "# Bad\n\nA caf\xE9 in Latin-1, in an otherwise fine chapter.\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 2);
	assert_chapter(&f->book, 1, "Bad", "sub/bad.md");
	assert_contains(f->book.chapters[1].markdown, "A caf\xEF\xBF\xBD in Latin-1");
	assert_int_equal(f->book.nwarnings, 1);
	/* Named relative to the book's root, never by a path on this machine. */
	assert_warning(&f->book, 0, "sub/bad.md", "cleaned", "1 invalid UTF-8 byte replaced with U+FFFD");
	assert_contains(f->book.warnings[0].message, "byte 12");
	assert_null(strstr(f->book.warnings[0].file, f->dir));
}

static void test_folder_mostly_invalid_skipped(void **state)
{
	struct fixture *f = *state;
	write_file(f, "good.md", "# Good\n");
	write_file(f, "latin.md", "\xE9t\xE9 \xE0 l'\xEEle\n");
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 1);
	assert_chapter(&f->book, 0, "Good", "good.md");
	assert_int_equal(f->book.nwarnings, 1);
	assert_warning(&f->book, 0, "latin.md", "skipped", "not UTF-8 text (4 of 12 bytes invalid)");
}

static void test_folder_nul_byte_skipped(void **state)
{
	struct fixture *f = *state;
	write_file(f, "a.md", "# A\n");
	write_n(f, "part/bin.md", "# A\0B\n", 6);
	write_n(f, "utf16.md", "\xFF\xFE#\0 \0X\0", 8);
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 1);
	assert_int_equal(f->book.nwarnings, 2);
	assert_warning(&f->book, 0, "part/bin.md", "skipped", "NUL bytes");
	assert_warning(&f->book, 1, "utf16.md", "skipped", "NUL bytes");
	assert_int_equal(f->book.warnings_omitted, 0);
}

static void test_folder_bad_file_name_warned_as_utf8(void **state)
{
	struct fixture *f = *state;
	write_file(f, "a.md", "# A\n");
	write_n(f, "caf\xE9.md", "x\0", 2);
	load_ok(f, "");
	assert_warning(&f->book, 0, "caf\xEF\xBF\xBD.md", "skipped", "NUL");
}

static void test_folder_warnings_capped(void **state)
{
	struct fixture *f = *state;
	write_file(f, "a.md", "# A\n");
	for (int i = 0; i < IMPORT_MAX_WARNINGS + 5; i++) {
		char name[32];
		snprintf(name, sizeof(name), "bin/%03d.md", i);
		write_n(f, name, "\0", 1);
	}
	load_ok(f, "");
	assert_int_equal(f->book.nchapters, 1);
	assert_int_equal(f->book.nwarnings, IMPORT_MAX_WARNINGS);
	assert_int_equal(f->book.warnings_omitted, 5);
	assert_warning(&f->book, 0, "bin/000.md", "skipped", "NUL");
}

static void test_folder_only_skipped_files(void **state)
{
	struct fixture *f = *state;
	write_n(f, "bin.md", "# A\0B\n", 6);
	struct err e = { 0 };
	assert_int_equal(load(f, "", &e), ERR_INVALID);
	assert_contains(e.msg, "no chapters");
	assert_contains(e.msg, "bin.md skipped: contains NUL bytes");
}

static void test_folder_multiline_jsx_stripped(void **state)
{
	struct fixture *f = *state;
	write_file(f, "ch.mdx", "---\ntitle: Chapter\n---\n"
				"import WhatYouWillLearn from '@site/src/components/WhatYouWillLearn';\n"
				"\n"
				"<WhatYouWillLearn\n"
				"  goals={[\n"
				"    \"Explain why x > y\",\n"
				"    \"Balance {braces}\",\n"
				"  ]}\n"
				"/>\n"
				"\n"
				"The chapter body.\n");
	load_ok(f, "");
	const char *md = f->book.chapters[0].markdown;
	assert_not_contains(md, "WhatYouWillLearn");
	assert_not_contains(md, "goals");
	assert_not_contains(md, "]}");
	assert_string_equal(md, "The chapter body.\n");
}

static void test_folder_empty(void **state)
{
	struct fixture *f = *state;
	make_dir(f, "empty");
	struct err e = { 0 };
	assert_int_equal(load(f, "empty", &e), ERR_INVALID);
	assert_contains(e.msg, "no chapters");
	assert_contains(e.msg, "empty");
}

static void test_folder_only_drafts_and_partials(void **state)
{
	struct fixture *f = *state;
	write_file(f, "d.md", "---\ndraft: true\n---\n# D\n");
	write_file(f, "_p.md", "# P\n");
	write_file(f, "readme.txt", "text\n");
	struct err e = { 0 };
	assert_int_equal(load(f, "", &e), ERR_INVALID);
	assert_contains(e.msg, "no chapters");
}

/* ==== import_load: single files and errors ================================== */

static void test_load_markdown_file(void **state)
{
	struct fixture *f = *state;
	write_file(f, "01-my-novel.md", "# Part One\nA\n\n# Part Two\nB\n");
	load_ok(f, "01-my-novel.md");
	assert_int_equal(f->book.nchapters, 2);
	assert_chapter(&f->book, 0, "Part One", "chapter-1");
	assert_string_equal(f->book.title, "my-novel");
}

static void test_load_text_file(void **state)
{
	struct fixture *f = *state;
	write_file(f, "novel.txt", "A Novel\n\nChapter 1: Start\nText.\n");
	load_ok(f, "novel.txt");
	assert_int_equal(f->book.nchapters, 1);
	assert_string_equal(f->book.title, "A Novel");
}

static void test_load_text_file_invalid_utf8(void **state)
{
	struct fixture *f = *state;
	write_file(f, "latin1.txt", "Caf\xE9\nChapter 1\nx\n");
	load_ok(f, "latin1.txt");
	assert_string_equal(f->book.title, "Caf\xEF\xBF\xBD");
	assert_int_equal(f->book.single_file, 1);
	assert_warning(&f->book, 0, "latin1.txt", "cleaned", "1 invalid UTF-8 byte");
}

static void test_load_single_file_not_text(void **state)
{
	struct fixture *f = *state;
	write_n(f, "bin.md", "# A\0B\n", 6);
	struct err e = { 0 };
	assert_int_equal(load(f, "bin.md", &e), ERR_INVALID);
	assert_contains(e.msg, "bin.md");
	assert_contains(e.msg, "NUL bytes");
	write_file(f, "latin.txt", "\xE9t\xE9 \xE0 l'\xEEle\n");
	assert_int_equal(load(f, "latin.txt", &e), ERR_INVALID);
	assert_contains(e.msg, "not UTF-8 text");
}

static void test_load_unsupported_extension(void **state)
{
	struct fixture *f = *state;
	write_file(f, "book.pdf", "%PDF-1.4\n");
	struct err e = { 0 };
	assert_int_equal(load(f, "book.pdf", &e), ERR_UNSUPPORTED);
	assert_int_equal(e.code, ERR_UNSUPPORTED);
	assert_contains(e.msg, "book.pdf");
}

static void test_load_no_extension_unsupported(void **state)
{
	struct fixture *f = *state;
	write_file(f, "README", "# Title\n");
	struct err e = { 0 };
	assert_int_equal(load(f, "README", &e), ERR_UNSUPPORTED);
}

static void test_load_missing_path(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	assert_int_equal(load(f, "nope", &e), ERR_IO);
	assert_contains(e.msg, "nope");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_text_chapters_split),
		T(test_text_title_from_first_line),
		T(test_text_front_matter_not_in_chapters),
		T(test_text_existing_title_kept),
		T(test_text_chapter_without_title),
		T(test_text_roman_numerals),
		T(test_text_separators),
		T(test_text_prose_mentioning_chapter_not_split),
		T(test_text_indentation_removed),
		T(test_text_crlf),
		T(test_text_empty_chapter_kept),
		T(test_text_last_chapter_without_final_newline),
		T(test_text_single_chapter_without_final_newline),
		T(test_text_no_chapters),
		T(test_text_empty),
		T(test_md_split_at_h1),
		T(test_md_h1_in_code_fence_not_split),
		T(test_md_intro_before_first_h1),
		T(test_md_blank_before_first_h1_ignored),
		T(test_md_no_h1_single_chapter),
		T(test_md_front_matter_title),
		T(test_md_mdx_stripped),
		T(test_md_title_strips_closing_hashes),
		T(test_md_title_keeps_hash_inside_word),
		T(test_md_empty),
		T(test_folder_front_matter_title),
		T(test_folder_front_matter_quoted_title),
		T(test_folder_title_from_first_heading),
		T(test_folder_heading_in_code_not_title),
		T(test_folder_title_from_file_name),
		T(test_folder_sidebar_position_order),
		T(test_folder_fractional_positions),
		T(test_folder_name_order_without_positions),
		T(test_folder_category_position_order),
		T(test_folder_category_yml_position),
		T(test_folder_nested_order_within_folder),
		T(test_folder_draft_skipped),
		T(test_folder_partials_hidden_and_others_skipped),
		T(test_folder_extensions),
		T(test_folder_mdx_cleaned),
		T(test_folder_bom_dropped),
		T(test_folder_book_json),
		T(test_folder_book_json_null_fields),
		T(test_folder_book_json_wrong_type),
		T(test_folder_book_json_malformed),
		T(test_folder_title_from_folder_name),
		T(test_folder_invalid_utf8_cleaned),
		T(test_folder_mostly_invalid_skipped),
		T(test_folder_nul_byte_skipped),
		T(test_folder_bad_file_name_warned_as_utf8),
		T(test_folder_warnings_capped),
		T(test_folder_only_skipped_files),
		T(test_folder_multiline_jsx_stripped),
		T(test_folder_empty),
		T(test_folder_only_drafts_and_partials),
		T(test_load_markdown_file),
		T(test_load_text_file),
		T(test_load_text_file_invalid_utf8),
		T(test_load_single_file_not_text),
		T(test_load_unsupported_extension),
		T(test_load_no_extension_unsupported),
		T(test_load_missing_path),
	};
	return cmocka_run_group_tests_name("importer", tests, NULL, NULL);
}
