"""Chunking as seen through search: every chunk is a byte range of the
chapter's Markdown, cut at block boundaries (never across a heading), with
the heading, heading path and anchor of its section; nothing of the
chapter's text is lost.  Chapters carry marker words (mkNNN) whose expected
section is known, so coverage and attribution can be checked exactly."""
import re

import pytest

from conftest import start_server, uniq
from test_search_common import chapter_chunks, check_hit, get_chapter, hits, wait_jobs_idle

MAX_TOKENS = 64  # BOOKD_CHUNK_TOKENS for this module: 256-byte chunks
MARK_RE = re.compile(r"mk\d{3}")


@pytest.fixture(scope="module")
def csrv(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("search-chunker"),
                       env={"BOOKD_CHUNK_TOKENS": str(MAX_TOKENS), "BOOKD_JOB_BACKOFF_MS": "50"})
    yield srv
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc}:\n{srv.log_tail()}"


def index_chapter(srv, title, md):
    b = srv.create_book(title=uniq("chunker book"))
    c = srv.add_chapter(b["id"], title=title, content_markdown=md)
    wait_jobs_idle(srv)
    return get_chapter(srv, b["id"], c["id"])


def check_chapter(srv, ch, expected):
    """expected: {marker: (heading, anchor)}; returns the chunks."""
    chunks = chapter_chunks(srv, ch)
    assert chunks, "no chunks"
    cache = {ch["id"]: ch}
    prev = 0
    found = {}
    for h in chunks:
        check_hit(srv, h, cache)
        assert h["char_start"] >= prev, f"chunks overlap or are out of order: {h['char_start']} < {prev}"
        prev = h["char_end"]
        for m in MARK_RE.findall(h["text"]):
            assert m not in found, f"{m} is in two chunks"
            found[m] = (h["heading"], h["anchor"])
    want_markers = set(MARK_RE.findall(ch["content_markdown"]))
    missing = sorted(want_markers - set(found))
    assert not missing, (f"text lost by the chunker: {missing}; chunks:\n" +
                         "\n".join(f"  [{h['char_start']}:{h['char_end']}] {h['heading']!r}: {h['text'][:60]!r}"
                                   for h in chunks))
    wrong = {m: (found[m], exp) for m, exp in expected.items() if found.get(m) != exp}
    assert not wrong, f"markers attributed to the wrong section (got, want): {wrong}"
    # and each marker is findable by keyword search, in that chapter only
    return chunks


MIXED = """Intro paragraph mk001 before any heading.

# Mixed Zqmix

Under the H1 equal to the title mk002.

## Lists

- item one mk003
- item two

  continued paragraph in item mk004

    1. nested mk005
\t- tab-indented item mk006

## Quotes

> quoted text mk007
>
> ## Quoted heading
>
> after quoted heading mk008

Paragraph after the quote mk009.

## Code

```python
def f():
\treturn "mk010"


x = 1  # mk011
```

| col a | col b |
|-------|-------|
| mk012 | cell  |

Setext heading
--------------

Under setext mk013.

<div class="note">
A long HTML block is kept: mk014 is inside it, and it is longer than the
limit under which stray HTML is dropped as noise, so here are more words;
a few more words make sure that it is well over two hundred bytes long.
</div>

<br/>

## Lists

Second section with the same heading mk015.

### Deeper

Deeper text mk016 with multibyte \u00fcn\u00efc\u00f6d\u00e9 \u2713 \u65e5\u672c\u8a9e words.

## Custom {#my-id}

Custom anchor text mk017.
"""

MIXED_EXPECT = {
    "mk001": ("Mixed Zqmix", None),
    "mk002": ("Mixed Zqmix", "mixed-zqmix"),
    "mk003": ("Lists", "lists"), "mk004": ("Lists", "lists"),
    "mk005": ("Lists", "lists"), "mk006": ("Lists", "lists"),
    "mk007": ("Quotes", "quotes"), "mk008": ("Quotes", "quotes"),
    "mk009": ("Quotes", "quotes"),
    "mk010": ("Code", "code"), "mk011": ("Code", "code"), "mk012": ("Code", "code"),
    "mk013": ("Setext heading", "setext-heading"),
    "mk014": ("Setext heading", "setext-heading"),
    "mk015": ("Lists", "lists-1"),
    "mk016": ("Deeper", "deeper"),
    "mk017": ("Custom", "my-id"),
}


def test_mixed_markdown_sections_and_coverage(csrv):
    ch = index_chapter(csrv, "Mixed Zqmix", MIXED)
    chunks = check_chapter(csrv, ch, MIXED_EXPECT)
    by_heading = {h["heading"]: h for h in chunks}
    # paths: the H1 equal to the chapter title is not repeated; nesting shows
    assert by_heading["Deeper"]["heading_path"] == "Mixed Zqmix > Lists > Deeper"
    assert by_heading["Code"]["heading_path"] == "Mixed Zqmix > Code"
    # no chunk crosses a heading line
    for h in chunks:
        assert not re.search(r"(^|\n)#{1,6} ", h["text"].replace("> ## Quoted", "")), h["text"]
    # stray short HTML is not indexed on its own
    assert not any(h["text"] == "<br/>" for h in chunks)
    # the code fence is kept whole (it fits)
    code = [h for h in chunks if "mk010" in h["text"]][0]
    assert code["text"].startswith("```python") and "mk011" in code["text"]


def test_crlf_line_endings(csrv):
    md = ("Para one mk201.\r\n\r\n## Heading Crlf\r\n\r\nPara two mk202\r\nline two mk203.\r\n\r\n"
          "- item mk204\r\n- item mk205\r\n")
    ch = index_chapter(csrv, "Crlf Zqcrlf", md)
    chunks = check_chapter(csrv, ch, {
        "mk201": ("Crlf Zqcrlf", None), "mk202": ("Heading Crlf", "heading-crlf"),
        "mk203": ("Heading Crlf", "heading-crlf"), "mk205": ("Heading Crlf", "heading-crlf")})
    for h in chunks:
        assert not h["text"].endswith("\r"), repr(h["text"])


def test_cr_only_line_endings(csrv):
    """CommonMark: a line ending is LF, CRLF or a lone CR.  The sections API
    sees the heading; the chunks must contain all the text too."""
    md = "Para one mk101.\r\rPara two mk102.\r\r## Heading Cr\r\rPara three mk103.\r"
    ch = index_chapter(csrv, "Cr Zqcr", md)
    assert [s["anchor"] for s in ch["sections"]] == ["heading-cr"], ch["sections"]
    check_chapter(csrv, ch, {"mk101": ("Cr Zqcr", None), "mk102": ("Cr Zqcr", None),
                             "mk103": ("Heading Cr", "heading-cr")})


def test_long_blocks_are_split_within_the_budget(csrv):
    sentences = " ".join(f"Sentence number {i} talks about mk{300 + i:03d} robots." for i in range(24))
    code = "\n".join(f"value_{i} = compute(mk{400 + i:03d})  # line {i}" for i in range(30))
    run = "\u00e9" * 700  # 1400 bytes, no boundary at all
    md = (f"Short one mk500.\n\nShort two mk501.\n\n{sentences}\n\n```\n{code}\n```\n\n"
          f"## Run\n\n{run}\n\nTail mk502.\n")
    ch = index_chapter(csrv, "Split Zqsplit", md)
    chunks = check_chapter(csrv, ch, {"mk500": ("Split Zqsplit", None), "mk502": ("Run", "run")})
    max_bytes = MAX_TOKENS * 4
    for h in chunks:
        assert len(h["text"].encode()) <= max_bytes, (len(h["text"].encode()), h["text"][:80])
        assert h["token_count"] <= MAX_TOKENS
    # small neighbouring paragraphs share a chunk
    first = [h for h in chunks if "mk500" in h["text"]][0]
    assert "mk501" in first["text"], "small paragraphs were not merged"
    # prose is cut at sentence ends, code at line ends
    prose = [h for h in chunks if "Sentence number" in h["text"] and "mk501" not in h["text"]]
    assert len(prose) >= 3
    for h in prose[:-1]:
        assert h["text"].endswith("robots."), h["text"][-40:]
    code_chunks = [h for h in chunks if "compute(" in h["text"]]
    assert len(code_chunks) >= 3
    for h in code_chunks:
        for line in h["text"].splitlines():
            assert line in ("```", "") or re.fullmatch(r"value_\d+ = compute\(mk\d{3}\)  # line \d+", line), line
    # the character run is cut between characters, and nothing of it is lost
    pieces = [h for h in chunks if "\u00e9" in h["text"]]
    assert len(pieces) >= 6
    assert sum(len(h["text"]) for h in pieces) == 700


def test_duplicate_text_and_same_text_in_two_sections(csrv):
    md = ("## Alpha\n\nRepeated paragraph mk600.\n\n## Beta\n\nRepeated paragraph mk600.\n\n"
          "## Alpha\n\nOther mk601.\n")
    ch = index_chapter(csrv, "Dup Zqdup", md)
    chunks = chapter_chunks(csrv, ch)
    cache = {ch["id"]: ch}
    for h in chunks:
        check_hit(csrv, h, cache)
    rep = [h for h in chunks if "mk600" in h["text"]]
    assert [(h["heading"], h["anchor"]) for h in rep] == [("Alpha", "alpha"), ("Beta", "beta")]
    assert len({h["chunk_id"] for h in rep}) == 2
    other = [h for h in chunks if "mk601" in h["text"]]
    assert [(h["heading"], h["anchor"]) for h in other] == [("Alpha", "alpha-1")]


def test_markers_found_by_keyword_search(csrv):
    ch = index_chapter(csrv, "Find Zqfind", "## One\n\nfindable mk700 here.\n\n## Two\n\nand mk701 there.\n")
    res = hits(csrv, q="mk701", chapter_id=ch["id"])
    assert len(res) == 1 and res[0]["anchor"] == "two"
