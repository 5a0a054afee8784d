"""`bookd import PATH`: folders (Docusaurus style), single .md, .txt,
re-import in place, error reporting.  Imports go into the shared server's
data dir while it is running (SQLite WAL) and are checked through the API."""
import json

from conftest import (SAMPLE_DIR, UUID7_RE, norm_isbn, random_isbn13,
                      run_bookd, uniq)


def do_import(server, path, *flags):
    p = run_bookd(["import", path, *flags], data_dir=server.data_dir)
    assert p.returncode == 0, f"import failed rc={p.returncode}: {p.stderr}"
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one JSON line on stdout, got {p.stdout!r}"
    out = json.loads(lines[0])
    assert {"book_id", "chapters", "title", "created"} <= set(out), out
    assert UUID7_RE.match(out["book_id"]), out
    assert isinstance(out["chapters"], int)
    assert isinstance(out["created"], bool)
    return out


def import_fails(data_dir, path, *flags):
    data_dir.mkdir(parents=True, exist_ok=True)
    p = run_bookd(["import", path, *flags], data_dir=data_dir)
    assert p.returncode != 0, f"import unexpectedly succeeded: {p.stdout}"
    assert p.stdout.strip() == "", f"stdout must be empty on failure: {p.stdout!r}"
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got {p.stderr!r}"
    assert lines[0].startswith("bookd: "), lines[0]
    return lines[0]


def chapters_full(server, book_id):
    r = server.get(f"/api/v1/books/{book_id}/chapters")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    out = []
    for it in items:
        g = server.get(f"/api/v1/books/{book_id}/chapters/{it['id']}")
        assert g.status_code == 200
        out.append(g.json())
    return out


def write(path, text, mode="w"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


MDX = """---
sidebar_position: 1
---
import Tabs from '@theme/Tabs';
import TabItem from '@theme/TabItem';
export const meta = {difficulty: 'easy'};

# Alpha Chapter

Some alpha text here.

<Tabs>
<TabItem value="py" label="Python">

Inside tab text.

</TabItem>
</Tabs>

<Figure src="robot.png" />

Closing alpha line.
"""


def make_docusaurus(root, title=None, author="Folder Author", language="de", isbn=None):
    """Four chapters whose correct order differs from file-name order:
    Welcome Aboard, Alpha Chapter, Beta Chapter, notes."""
    if title is not None:
        meta = {"title": title, "author": author, "language": language}
        if isbn:
            meta["isbns"] = [isbn]
        write(root / "book.json", json.dumps(meta))
    write(root / "intro.md",
          "---\ntitle: Welcome Aboard\nsidebar_position: 1\n---\n\n"
          "# Ignored Heading\n\nWelcome text.\n")
    write(root / "zz-first" / "_category_.json",
          json.dumps({"label": "First Part", "position": 2}))
    write(root / "zz-first" / "b-second.md",
          "---\nsidebar_position: 2\n---\n\n# Beta Chapter\n\nBeta body.\n\n## Beta Details\n\nMore.\n")
    write(root / "zz-first" / "a-first.mdx", MDX)
    write(root / "aa-second" / "_category_.json", json.dumps({"position": 3}))
    write(root / "aa-second" / "notes.md", "Just some notes without any heading.\n")
    return root


# ------------------------------------------------------------- folders

def test_import_docusaurus_folder(server, tmp_path):
    title = uniq("Folder Book")
    isbn = random_isbn13()
    root = make_docusaurus(tmp_path / "mybook", title=title, isbn=isbn)
    out = do_import(server, root)
    assert out["created"] is True
    assert out["chapters"] == 4
    assert out["title"] == title

    # visible immediately through the already-running server
    b = server.get(f"/api/v1/books/{out['book_id']}")
    assert b.status_code == 200, b.text
    b = b.json()
    assert b["title"] == title
    assert b["author"] == "Folder Author"
    assert b["language"] == "de"
    assert [norm_isbn(i["isbn"]) for i in b["isbns"]] == [isbn]
    assert b["chapter_count"] == 4
    assert server.get(f"/api/v1/books/isbn/{isbn}").json()["id"] == out["book_id"]

    chs = chapters_full(server, out["book_id"])
    assert [c["number"] for c in chs] == [1, 2, 3, 4]
    titles = [c["title"] for c in chs]
    assert titles[:3] == ["Welcome Aboard", "Alpha Chapter", "Beta Chapter"]
    assert titles[3] in ("notes", "notes.md"), titles
    assert "Welcome text." in chs[0]["content_markdown"]
    assert "Beta body." in chs[2]["content_markdown"]
    assert "beta-details" in [s["anchor"] for s in chs[2]["sections"]]
    assert "Just some notes" in chs[3]["content_markdown"]


def test_mdx_import_export_and_jsx_removed(server, tmp_path):
    root = tmp_path / uniq("mdxbook")
    write(root / "only.mdx", MDX)
    out = do_import(server, root)
    assert out["chapters"] == 1
    (c,) = chapters_full(server, out["book_id"])
    md = c["content_markdown"]
    assert c["title"] == "Alpha Chapter"
    for gone in ("import Tabs", "import TabItem", "export const", "<Tabs", "</Tabs>",
                 "<TabItem", "</TabItem>", "<Figure", "@theme/"):
        assert gone not in md, f"{gone!r} still in stored markdown:\n{md}"
    for kept in ("Some alpha text here.", "Inside tab text.", "Closing alpha line."):
        assert kept in md, f"{kept!r} missing from stored markdown:\n{md}"
    assert "sidebar_position" not in md, "front matter leaked into content"


def test_folder_without_book_json_uses_folder_name(server, tmp_path):
    name = uniq("folder-title")
    root = make_docusaurus(tmp_path / name)
    out = do_import(server, root)
    assert out["title"] == name
    assert out["chapters"] == 4
    assert server.get(f"/api/v1/books/{out['book_id']}").json()["title"] == name


def test_cli_flags_override_book_json(server, tmp_path):
    root = make_docusaurus(tmp_path / "flagbook", title=uniq("Json Title"))
    t = uniq("Flag Title")
    out = do_import(server, root, "--title", t, "--author", "Flag Author", "--language", "fr")
    assert out["title"] == t
    b = server.get(f"/api/v1/books/{out['book_id']}").json()
    assert b["title"] == t
    assert b["author"] == "Flag Author"
    assert b["language"] == "fr"


def test_filename_order_without_positions(server, tmp_path):
    root = tmp_path / uniq("byname")
    write(root / "c.md", "# Gamma\n\nc\n")
    write(root / "a.md", "# Alpha\n\na\n")
    write(root / "b.md", "# Beta\n\nb\n")
    write(root / "notes.txt", "not markdown, ignored\n")
    out = do_import(server, root)
    assert out["chapters"] == 3
    assert [c["title"] for c in chapters_full(server, out["book_id"])] == ["Alpha", "Beta", "Gamma"]


# ------------------------------------------------------- single .md file

def test_import_single_md_split_on_h1(server, tmp_path):
    f = tmp_path / f"{uniq('single')}.md"
    write(f, "# One\n\nfirst body\n\n## Sub of one\n\ntext\n\n"
             "# Two\n\nsecond body\n\n"
             "```\n# not a heading in code\n```\n\n"
             "# Three\n\nthird body\n")
    t = uniq("Single MD")
    out = do_import(server, f, "--title", t)
    assert out["chapters"] == 3
    assert out["title"] == t
    chs = chapters_full(server, out["book_id"])
    assert [c["title"] for c in chs] == ["One", "Two", "Three"]
    assert "first body" in chs[0]["content_markdown"]
    assert "## Sub of one" in chs[0]["content_markdown"]
    assert "second body" not in chs[0]["content_markdown"]
    assert "# not a heading in code" in chs[1]["content_markdown"]
    assert "third body" in chs[2]["content_markdown"]


def test_import_single_md_title_from_stem(server, tmp_path):
    stem = uniq("stem-title")
    f = tmp_path / f"{stem}.md"
    write(f, "# Only Heading\n\nbody\n\n## Sub\n\nmore\n")
    out = do_import(server, f)
    assert out["title"] == stem
    assert out["chapters"] == 1
    assert server.get(f"/api/v1/books/{out['book_id']}").json()["title"] == stem


def test_import_single_md_without_h1(server, tmp_path):
    f = tmp_path / f"{uniq('noh1')}.md"
    write(f, "Plain paragraph.\n\n## Second level only\n\ntext\n")
    out = do_import(server, f)
    assert out["chapters"] == 1
    (c,) = chapters_full(server, out["book_id"])
    assert "Plain paragraph." in c["content_markdown"]


# ----------------------------------------------------------------- .txt

TXT = """The Tale Of TAG
by Somebody

Chapter 1: Beginnings
Text one.

CHAPTER 2
Text two.

chapter 3: The End
Text three.
"""


def test_import_txt(server, tmp_path):
    tag = uniq("Tale")
    f = tmp_path / "story.txt"
    write(f, TXT.replace("TAG", tag))
    out = do_import(server, f)
    assert out["chapters"] == 3
    assert out["title"] == f"The Tale Of {tag}"
    chs = chapters_full(server, out["book_id"])
    assert "Beginnings" in chs[0]["title"]
    assert "The End" in chs[2]["title"]
    assert "Text one." in chs[0]["content_markdown"]
    assert "Text two." not in chs[0]["content_markdown"]
    assert "Text two." in chs[1]["content_markdown"]
    assert "Text three." in chs[2]["content_markdown"]


def test_import_txt_title_flag(server, tmp_path):
    f = tmp_path / "story2.txt"
    write(f, TXT.replace("TAG", "ignored"))
    t = uniq("Txt Flag")
    out = do_import(server, f, "--title", t)
    assert out["title"] == t
    assert server.get(f"/api/v1/books/{out['book_id']}").json()["title"] == t


# --------------------------------------------------------------- re-import

def test_reimport_updates_in_place(server, tmp_path):
    title = uniq("Reimport")
    root = make_docusaurus(tmp_path / "re", title=title)
    first = do_import(server, root)
    assert first["created"] is True and first["chapters"] == 4

    write(root / "aa-second" / "extra.md", "# Extra Chapter\n\nextra\n")
    second = do_import(server, root)
    assert second["book_id"] == first["book_id"]
    assert second["created"] is False
    assert second["chapters"] == 5
    assert server.get(f"/api/v1/books/{first['book_id']}").json()["chapter_count"] == 5
    assert len(server.books_titled(title)) == 1

    (root / "aa-second" / "extra.md").unlink()
    (root / "aa-second" / "notes.md").unlink()
    third = do_import(server, root)
    assert third["book_id"] == first["book_id"] and third["created"] is False
    assert third["chapters"] == 3
    chs = chapters_full(server, first["book_id"])
    assert [c["title"] for c in chs] == ["Welcome Aboard", "Alpha Chapter", "Beta Chapter"]
    assert len(server.books_titled(title)) == 1


def test_reimport_with_book_id(server, tmp_path):
    f1 = tmp_path / "one.md"
    write(f1, "# A\n\na\n")
    first = do_import(server, f1, "--title", uniq("ById"))
    f2 = tmp_path / "two.md"
    write(f2, "# X\n\nx\n\n# Y\n\ny\n")
    second = do_import(server, f2, "--book-id", first["book_id"])
    assert second["book_id"] == first["book_id"]
    assert second["created"] is False
    assert second["chapters"] == 2
    assert [c["title"] for c in chapters_full(server, first["book_id"])] == ["X", "Y"]


def test_failed_reimport_keeps_previous_content(server, tmp_path):
    title = uniq("Keep on failure")
    root = make_docusaurus(tmp_path / "keep", title=title)
    first = do_import(server, root)
    before_book = server.get(f"/api/v1/books/{first['book_id']}").json()
    before = chapters_full(server, first["book_id"])

    # Too large refuses the book (bytes that are not UTF-8 no longer do).
    broken = root / "aa-second" / "broken.md"
    write(broken, "# Broken\n")
    with open(broken, "r+b") as f:
        f.truncate(17 << 20)
    msg = import_fails(server.data_dir, root)
    assert "broken.md" in msg

    assert server.get(f"/api/v1/books/{first['book_id']}").json() == before_book
    assert chapters_full(server, first["book_id"]) == before
    assert len(server.books_titled(title)) == 1


# ----------------------------------------------------------------- errors

def test_error_missing_path(tmp_path):
    missing = tmp_path / "does-not-exist.md"
    msg = import_fails(tmp_path / "data", missing)
    assert str(missing) in msg


def test_error_invalid_utf8_md(tmp_path):
    """A single file that is mostly not UTF-8 leaves nothing to import (one
    with a few bad bytes is cleaned: test_import_robust)."""
    f = tmp_path / "bad-utf8.md"
    write(f, b"# \xff\xfe\xfd\xfc\xfb\n")
    msg = import_fails(tmp_path / "data", f)
    assert str(f) in msg
    assert "not UTF-8 text" in msg


def test_error_folder_without_markdown(tmp_path):
    d = tmp_path / "empty-folder"
    write(d / "readme.txt", "nothing here\n")
    write(d / "image.png", b"\x89PNG\r\n")
    msg = import_fails(tmp_path / "data", d)
    assert str(d) in msg
    assert "no chapters found" in msg


def test_error_unsupported_extension(tmp_path):
    f = tmp_path / "book.pdf"
    write(f, b"%PDF-1.4\n")
    msg = import_fails(tmp_path / "data", f)
    assert str(f) in msg


def test_error_leaves_no_book(server, tmp_path):
    f = tmp_path / f"{uniq('badfile')}.md"
    write(f, b"# T\n\n\xc3\x28\n")
    before = len(server.all_books())
    import_fails(server.data_dir, f)
    assert len(server.all_books()) == before


# ------------------------------------------------------------ sample data

def test_import_sample_folder(server_factory, tmp_path):
    src = SAMPLE_DIR / "physical-ai"
    assert src.is_dir(), f"sample missing at {src}"
    data = tmp_path / "sample-data"
    p = run_bookd(["import", src], data_dir=data)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip())
    assert out["chapters"] == 6
    assert out["title"] == "Physical AI and Humanoid Robotics: A Short Introduction"
    assert out["created"] is True

    srv = server_factory(data_dir=data)
    b = srv.get(f"/api/v1/books/{out['book_id']}").json()
    assert b["author"] == "The bookd Authors"
    assert b["chapter_count"] == 6
    for form in ("978-0-306-40615-7", "0-306-40615-2"):
        r = srv.get(f"/api/v1/books/isbn/{form}")
        assert r.status_code == 200 and r.json()["id"] == out["book_id"], form
    items = srv.get(f"/api/v1/books/{out['book_id']}/chapters").json()["items"]
    assert [c["number"] for c in items] == [1, 2, 3, 4, 5, 6]
    assert all(c["title"] and c["word_count"] > 50 for c in items), items
    for c in items:
        full = srv.get(f"/api/v1/books/{out['book_id']}/chapters/{c['id']}").json()
        md = full["content_markdown"]
        assert md.strip(), c
        assert not any(ln.startswith(("import ", "export ")) for ln in md.splitlines()), c["title"]
        assert "sidebar_position" not in md, c["title"]

    # re-importing the sample does not duplicate it
    p2 = run_bookd(["import", src], data_dir=data)
    assert p2.returncode == 0, p2.stderr
    out2 = json.loads(p2.stdout.strip())
    assert out2["book_id"] == out["book_id"] and out2["created"] is False
    assert len(srv.all_books()) == 1


def test_import_sample_txt(tmp_path):
    src = SAMPLE_DIR / "robots-plain.txt"
    assert src.is_file(), f"sample missing at {src}"
    p = run_bookd(["import", src], data_dir=tmp_path / "data")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip())
    assert out["chapters"] == 3
    # the title comes from the text before the first chapter heading
    assert out["title"] and not out["title"].lower().startswith("chapter")
    assert out["title"] != "robots-plain"
