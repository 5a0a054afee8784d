"""docs/openapi.yaml against the server and the route table.

- Every operation (path + method) in the document exists on the running
  server: called with real ids (a book, its ISBN, a chapter, an API key and
  a chat session created through the API), real credentials where the body
  needs them (a user registered through the API for login, refresh and
  logout) and the document's own request example otherwise (with the real
  book, chapter and chat session in place of the example's `book_id`,
  `chapter_id` and `session_id`; and the examples of required query
  parameters), it answers neither 404 "no such route" nor 405, but a
  documented 2xx whose body matches the documented schema and which carries
  the documented headers (those not marked `required: false`). Operations
  that document `security` are called with the master key (X-API-Key).
- The module's server has a language model: a fake one (fake_llm.FakeLLM)
  that answers every call with its input uppercased (placeholders kept), so
  that translation, personalisation, section refreshes and whole-book
  translation succeed as they would with a real model.
- Chat: {session_id} is a session of the master key's user, started by a
  question about the real book.
- Reading: {language_code} is "ur", with a human translation of the real
  chapter stored through the API; {anchor} is that chapter's first section.
- Jobs: {job_id} is a fresh job that finishes at once (test.noop when the
  server runs with BOOKD_TEST_JOBS=1, else the import of a small Markdown
  file). A job submission uses the first documented example of a type the
  server takes (test.* only with BOOKD_TEST_JOBS=1), about the real book;
  if all of them are test.* jobs, it is sent to a server with
  BOOKD_TEST_JOBS=1 (the shared one if it has it, else one of this
  module's own). A documented `multipart/form-data` body (the book import)
  is sent as a form with a small .md file; an operation with an `Idempotency-Key`
  parameter is sent twice with one key, and the repeat must give back the
  same job with `Idempotent-Replayed: true`; a `text/event-stream` response
  is read until its `done` event, and each event's data must match the
  schema the document gives for it (`x-events`); a job's stream must end
  with a finished job. An operation whose 2xx response documents both
  `application/json` and `text/event-stream` (the chatbot) is called twice:
  once plainly (JSON) and once with `Accept: text/event-stream`.
- On every documented path, the server's `Allow` lists exactly the documented
  methods (plus HEAD for GET, and OPTIONS): no undocumented methods. Where a
  literal path is also matched by a templated one (/books/import and
  /books/{book_id}), the URL allows the methods of both.
- Every route of src/api/routes.c is documented.
"""
import copy
import json
import re
import time

import pytest
import requests
import yaml

from conftest import ADMIN, HTTP_TIMEOUT, REPO_ROOT, SLOW, random_isbn13, start_server, uniq
from fake_llm import FakeLLM
from test_chat_common import llm_env

SPEC_PATH = REPO_ROOT / "docs" / "openapi.yaml"
ROUTES_C = REPO_ROOT / "src" / "api" / "routes.c"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# `{ HTTP_GET, "/api/v1/books", api_books_list },`
ROUTE_RE = re.compile(r'\{\s*HTTP_([A-Z]+)\s*,\s*"([^"]+)"\s*,\s*(\w+)\s*(?:,\s*[\w|]+\s*){0,2}\}')
PARAM_RE = re.compile(r"\{([^}/]+)\}")
JOB_STATUSES = ["pending", "processing", "completed", "failed", "cancelled"]
TERMINAL = {"completed", "failed", "cancelled"}
SSE = "text/event-stream"


def load_spec():
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


SPEC = load_spec()


def deref(node):
    """Follows local `$ref`s (#/components/...) to the object they name."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are supported: {ref}"
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
        assert seen < 50, f"$ref loop at {ref}"
    return node


def spec_operations():
    """[(METHOD, path)] of the document, in document order."""
    return [(m.upper(), path) for path, item in SPEC["paths"].items()
            for m in item if m in HTTP_METHODS]


def source_routes():
    text = ROUTES_C.read_text(encoding="utf-8")
    routes = [(m, p) for m, p, _fn in ROUTE_RE.findall(text)]
    assert routes, f"no `{{ HTTP_X, \"/path\", fn }}` entries found in {ROUTES_C}"
    return routes


def shape(path):
    """A path with its parameter names erased: /books/{} == /books/{book_id}."""
    return PARAM_RE.sub("{}", path.rstrip("/") or "/")


def path_regex(path):
    """A documented path as a regex over concrete URLs: {x} is one segment."""
    parts = PARAM_RE.split(path)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else "[^/]+"
                              for i, p in enumerate(parts)))


def success_media(op):
    """The media types of the operation's documented 2xx responses."""
    return {m for code, resp in deref(op["responses"]).items() if str(code).startswith("2")
            for m in (deref(resp).get("content") or {})}


def media_variants(op):
    """Both ways of calling an operation that answers JSON or an event stream
    (as the client asks); one way ("-", no Accept header) otherwise."""
    media = success_media(op)
    return ("application/json", SSE) if {"application/json", SSE} <= media else ("-",)


def operation_cases():
    cases = []
    for method, path in spec_operations():
        op = SPEC["paths"][path][method.lower()]
        kinds = ("id", "number") if "{chapter}" in path else ("-",)
        for kind in kinds:
            for accept in media_variants(op):
                label = (f"{method} {path}" + (f" [chapter by {kind}]" if kind != "-" else "")
                         + (f" [{accept}]" if accept != "-" else ""))
                cases.append(pytest.param(method, path, kind, accept, id=label))
    return cases


# ------------------------------------------------------------ tiny validator

def _is_type(value, t):
    return {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[t]


def conform(schema, value, where="$"):
    """Problems of `value` against the document's JSON Schema subset (type,
    enum, const, pattern, minimum/maximum, required, properties,
    additionalProperties: false, items, allOf, oneOf/anyOf)."""
    schema = deref(schema)
    if schema is True or not schema:
        return []
    problems = []
    for sub in schema.get("allOf", []):
        problems += conform(sub, value, where)
    alts = schema.get("oneOf") or schema.get("anyOf")
    if alts and all(conform(alt, value, where) for alt in alts):
        problems.append(f"{where}: {value!r} matches none of the alternatives")
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_is_type(value, t) for t in types):
            return problems + [f"{where}: {value!r} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} > maximum {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{where}: required key {key!r} is missing")
        for key, sub in props.items():
            if key in value:
                problems += conform(sub, value[key], f"{where}.{key}")
        if schema.get("additionalProperties") is False:
            extra = set(value) - set(props)
            if extra:
                problems.append(f"{where}: undocumented keys {sorted(extra)}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += conform(schema["items"], item, f"{where}[{i}]")
    return problems


# ------------------------------------------------------------ helpers

@pytest.fixture(scope="module")
def fake_llm():
    """The module server's language model: every answer is the call's input
    transformed (uppercased outside placeholders), structure intact."""
    fake = FakeLLM().start()
    fake.set_default(transform="upper")
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm):
    """This module's server: the shared one's settings plus a language model,
    which the reading routes need to succeed."""
    srv = start_server(tmp_path_factory.mktemp("openapi"), env=llm_env(fake_llm))
    yield srv
    rc = srv.stop()
    assert rc == 0, f"openapi server exited with {rc} on SIGTERM; log tail:\n{srv.log_tail()}"


@pytest.fixture
def world(server):
    """A fresh book with an ISBN and chapter 1, and an API key (of the master
    key's user), so that every case (DELETE included) has its own real ids."""
    isbn = random_isbn13()
    book = server.create_book(title=uniq("openapi book"), isbns=[isbn])
    chapter = server.add_chapter(book["id"], title=uniq("openapi chapter"),
                                 content_markdown="# Start\n\nSome text.", number=1)
    r = server.post("/api/v1/auth/api-keys", json={"name": uniq("openapi key")}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"book": book, "chapter": chapter, "isbn": isbn, "api_key": r.json(), "server": server}


@pytest.fixture(scope="module")
def jobs_server(server, tmp_path_factory):
    """A server that takes the test.* job types: the shared one if it runs
    with BOOKD_TEST_JOBS=1, else one started for this module."""
    if test_jobs_enabled(server):
        yield server
        return
    srv = start_server(tmp_path_factory.mktemp("openapi-jobs"), env={"BOOKD_TEST_JOBS": "1"})
    yield srv
    rc = srv.stop()
    assert rc == 0, f"openapi jobs server exited with {rc}; log tail:\n{srv.log_tail()}"


def test_jobs_enabled(server):
    """Whether the server takes the test.* job types (BOOKD_TEST_JOBS=1)."""
    return server.env.get("BOOKD_TEST_JOBS") == "1"


test_jobs_enabled.__test__ = False  # a helper, not a test


def markdown_file(title):
    return f"# {title}\n\nImported by test_openapi.py.\n".encode()


def new_job(server):
    """A job of the master key's user that finishes at once: test.noop when
    the server takes test jobs, else the import of a one-chapter .md file."""
    if test_jobs_enabled(server):
        r = server.post("/api/v1/jobs", json={"type": "test.noop"}, headers=ADMIN)
    else:
        title = uniq("openapi job")
        r = server.post("/api/v1/books/import", headers=ADMIN, data={"title": title},
                        files={"file": ("openapi-job.md", markdown_file(title), "text/markdown")})
    assert r.status_code == 202, f"cannot queue a job: {r.status_code} {r.text[:300]}"
    return r.json()["job_id"]


def with_audio(world):
    """Runs the BookBytes pipeline on the world's book (by its ISBN), so
    that its chapter has audio and timings."""
    srv = world["server"]
    r = srv.post("/api/v1/books/process", json={"isbn": world["isbn"]}, headers=ADMIN)
    assert r.status_code == 202, r.text
    deadline = time.time() + 120
    while time.time() < deadline:
        j = srv.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=ADMIN).json()
        if j["status"] in TERMINAL:
            assert j["status"] == "completed", j
            return
        time.sleep(0.1)
    pytest.fail(f"the pipeline did not finish: {j}")


def account(server, world):
    """A user registered through the API (once per world: argon2id is slow),
    with its password and the tokens the registration returned."""
    if "account" not in world:
        creds = {"email": f"{uniq('openapi')}@example.com", "password": uniq("pw")}
        r = server.post("/api/v1/auth/register", json=creds)
        assert r.status_code == 201, r.text
        world["account"] = {**creds, "tokens": r.json()}
    return world["account"]


def chat_session(world):
    """A chat session of the master key's user (once per world), started by
    a question about the world's book."""
    if "session_id" not in world:
        r = world["server"].post("/api/v1/chatbot/query", headers=ADMIN,
                                 json={"question": "What does the start say?",
                                       "book_id": world["book"]["id"]})
        assert r.status_code == 200, f"cannot start a chat session: {r.status_code} {r.text[:300]}"
        world["session_id"] = r.json()["session_id"]
        world["message_id"] = r.json()["message_id"]
    return world["session_id"]


def chat_message(world):
    """An answer in the master key's chat session."""
    chat_session(world)
    return world["message_id"]


def human_translation(world):
    """"ur", with a human translation of the world's chapter stored."""
    srv, b, c = world["server"], world["book"]["id"], world["chapter"]["id"]
    md = srv.get(f"/api/v1/books/{b}/chapters/{c}", headers=ADMIN).json()["content_markdown"]
    r = srv.put(f"/api/v1/books/{b}/chapters/{c}/translations/ur", json={"content_markdown": md}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return "ur"


def reading_anchor(world):
    srv, b, c = world["server"], world["book"]["id"], world["chapter"]["id"]
    r = srv.get(f"/api/v1/books/{b}/chapters/{c}/translated/{human_translation(world)}", headers=ADMIN)
    return r.json()["sections"][0]["anchor"]


def doc_ids(world):
    """Docusaurus doc ids of 1 to 4 segments, of a book imported (once per
    world) from a zip of a docs folder: {segments: [segment, ...]}."""
    if "doc_ids" not in world:
        import io
        import zipfile
        top = uniq("oadoc").replace("-", "")
        files = {f"{top}.md": "one", f"{top}/a.md": "two", f"{top}/b/c.md": "three",
                 f"{top}/b/c/d.md": "four"}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("book.json", json.dumps({"title": uniq("openapi docs")}))
            for name, word in files.items():
                z.writestr(name, f"# Chapter {word}\n\nText of chapter {word}.\n")
        srv = world["server"]
        r = srv.post("/api/v1/books/import", headers=ADMIN,
                     files={"file": ("docs.zip", buf.getvalue(), "application/zip")})
        assert r.status_code == 202, f"cannot import the docs: {r.status_code} {r.text[:300]}"
        jid = r.json()["job_id"]
        deadline = time.monotonic() + 20
        while True:
            j = srv.get(f"/api/v1/jobs/{jid}", headers=ADMIN).json()
            if j["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert j["status"] == "completed", j
        world["doc_ids"] = {len(k[:-3].split("/")): k[:-3].split("/") for k in files}
    return world["doc_ids"]


DOC_PARAMS = ("doc_dir", "doc_sub", "doc_sub2", "doc_id")


def concrete_path(path, world, chapter_kind):
    names = PARAM_RE.findall(path)
    if names and all(n in DOC_PARAMS for n in names):
        segments = iter(doc_ids(world)[len(names)])
        return PARAM_RE.sub(lambda m: next(segments), path)
    values = {
        "book_id": lambda: world["book"]["id"],
        "isbn": lambda: world["isbn"],
        "chapter": lambda: (str(world["chapter"]["number"]) if chapter_kind == "number"
                            else world["chapter"]["id"]),
        "key_id": lambda: world["api_key"]["id"],
        "job_id": lambda: world.setdefault("job_id", new_job(world["server"])),
        "session_id": lambda: chat_session(world),
        "language_code": lambda: world.setdefault("lang", human_translation(world)),
        "anchor": lambda: reading_anchor(world),
    }

    def sub(m):
        name = m.group(1)
        if name not in values:
            pytest.fail(f"{path}: test_openapi.py knows no real value for the path "
                        f"parameter {{{name}}}; add one to concrete_path()")
        return values[name]()

    return PARAM_RE.sub(sub, path)


def media_example(media, label, usable=lambda value: True):
    """The media type's `example`, or the first of its `examples` that is usable."""
    if "example" in media:
        return copy.deepcopy(media["example"])
    for ex in (media.get("examples") or {}).values():
        value = deref(ex)["value"]
        if usable(value):
            return copy.deepcopy(value)
    pytest.fail(f"{label}: the request body has no (usable) example")


def request_example(op, label, server, world, path):
    """The documented JSON example of an operation's request body, made unique
    (fresh ISBNs, a unique title, a unique email to register) so it cannot
    collide with other tests, and with real credentials (login, refresh and
    logout use a user registered for this case), real book and chapter ids
    and a real chat session. A job
    submission uses an example of a type the server takes (test.* only with
    BOOKD_TEST_JOBS=1)."""
    if "requestBody" not in op:
        return None
    media = deref(op["requestBody"])["content"].get("application/json")
    assert media is not None, f"{label}: request body is not documented as application/json"

    body = media_example(media, label, lambda value: test_jobs_enabled(server) or not is_test_job(value))
    if isinstance(body, dict):
        if body.get("isbns"):
            body["isbns"] = [random_isbn13() for _ in body["isbns"]]
        if isinstance(body.get("title"), str):
            body["title"] = f"{body['title']} {uniq('openapi')}"
        if body.get("book_ids"):
            body["book_ids"] = [world["book"]["id"]]
        if isinstance(body.get("payload"), dict) and "book_id" in body["payload"]:
            body["payload"]["book_id"] = world["book"]["id"]  # a job about a real book
        # The chatbot: the real book and chapter, and a session of the caller.
        if body.get("book_id"):
            body["book_id"] = world["book"]["id"]
        if body.get("chapter_id"):
            body["chapter_id"] = world["chapter"]["id"]
        if body.get("session_id"):
            body["session_id"] = chat_session(world)
        if body.get("message_id"):
            body["message_id"] = chat_message(world)
        if path.endswith("/auth/register") and "email" in body:
            body["email"] = f"{uniq('openapi')}@example.com"
        elif path.endswith("/auth/login"):
            acct = account(server, world)
            body.update(email=acct["email"], password=acct["password"])
        if "refresh_token" in body:
            body["refresh_token"] = account(server, world)["tokens"]["refresh_token"]
    return body


def is_test_job(example):
    kind = example.get("type") if isinstance(example, dict) else None
    return isinstance(kind, str) and kind.startswith("test.")


def needs_test_jobs(op):
    """Whether every documented JSON request example is a test.* job (which
    only a server with BOOKD_TEST_JOBS=1 takes)."""
    media = deref(op.get("requestBody", {})).get("content", {}).get("application/json")
    if not media:
        return False
    examples = ([media["example"]] if "example" in media else
                [deref(ex)["value"] for ex in (media.get("examples") or {}).values()])
    return bool(examples) and all(is_test_job(ex) for ex in examples)


def request_kwargs(op, label, server, world, path):
    """requests keyword arguments for the operation's body: JSON (see
    request_example), or, for a documented multipart/form-data upload, the
    example's text fields (title made unique) and its file parts sent as a
    small .md file."""
    if "requestBody" not in op:
        return {}
    content = deref(op["requestBody"])["content"]
    form = content.get("multipart/form-data")
    if form is None:
        return {"json": request_example(op, label, server, world, path)}
    example = media_example(form, label)
    props = deref(form["schema"]).get("properties", {})
    file_parts = [k for k, v in props.items()
                  if deref(v).get("format") == "binary" or "contentMediaType" in deref(v)]
    assert file_parts, f"{label}: the multipart schema has no file part"
    title = f"{example.get('title') or 'openapi'} {uniq('openapi')}"
    data = {k: str(v) for k, v in example.items() if k not in file_parts}
    if "title" in props:
        data["title"] = title
    data.pop("book_id", None)  # a new book, not the example's
    files = {k: (f"{uniq('openapi')}.md", markdown_file(title), "text/markdown") for k in file_parts}
    return {"data": data, "files": files}


def query_params(op, path):
    """The documented examples of the operation's required query parameters."""
    params = {}
    for p in SPEC["paths"][path].get("parameters", []) + op.get("parameters", []):
        p = deref(p)
        if p.get("in") == "query" and p.get("required"):
            assert "example" in p, f"{path}: required query parameter {p['name']} has no example"
            params[p["name"]] = p["example"]
    return params


def header_param(op, name):
    return any(deref(p).get("in") == "header" and deref(p).get("name") == name
               for p in op.get("parameters", []))


def typed_end(data):
    """The last event of a stream of unnamed events typed in their data
    ({"type": "done"} or {"type": "error"})."""
    try:
        v = json.loads(data)
    except ValueError:
        return False
    return isinstance(v, dict) and v.get("type") in ("done", "error")


def read_events(r, label, timeout):
    """Server-Sent Events from a streamed response, until `done` or `error`
    (or the stream's end): [(event, data)]."""
    events, event, data = [], None, []
    deadline = time.monotonic() + timeout
    try:
        for line in r.iter_lines(decode_unicode=True):
            assert time.monotonic() < deadline, f"{label}: no `done` event within {timeout}s: {events}"
            if line is None:
                continue
            if line == "":
                if event or data:
                    events.append((event or "message", "\n".join(data)))
                    if event in ("done", "error") or (event is None and typed_end("\n".join(data))):
                        break
                event, data = None, []
            elif line.startswith(":"):
                continue  # a comment (keep-alive)
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
    except requests.exceptions.RequestException as exc:
        pytest.fail(f"{label}: the stream stalled before its `done` event ({exc!r}); "
                    f"events so far: {events}")
    return events


def check_event_stream(r, resp, label, got):
    """The documented event stream: events the document names, data matching
    each event's documented schema, ending with `done` (on a job's stream, a
    finished job)."""
    media = resp["content"][SSE]
    documented = media.get("x-events") or {}
    assert documented, f"{label}: the {SSE} response documents no events (x-events)"
    try:
        events = read_events(r, label, 30 * SLOW)
    finally:
        r.close()
    assert events, f"{label}: the stream ended without an event: {got}"
    for name, data in events:
        assert name in documented, f"{label}: undocumented event {name!r}: {events}"
        problems = conform(documented[name]["schema"], json.loads(data), f"event {name}")
        assert not problems, f"{label}: event {name!r} does not match its schema:\n" + "\n".join(problems)
    name, data = events[-1]
    if name == "message" and "done" not in documented:  # unnamed events, typed in their data
        name = json.loads(data).get("type")
    assert name == "done", f"{label}: the stream did not end with `done`: {events}"
    if documented.get("done", {}).get("schema", {}).get("$ref") == "#/components/schemas/Job":
        assert json.loads(data)["status"] in TERMINAL, events[-1]
        assert all(n == "progress" for n, _ in events[:-1]), events


# ------------------------------------------------------------ tests

def test_document_basics():
    assert str(SPEC.get("openapi", "")).startswith("3.1"), SPEC.get("openapi")
    assert SPEC["info"]["title"] and SPEC["info"]["version"]
    schemas = SPEC["components"]["schemas"]
    for name in ("Book", "BookInput", "Isbn", "Chapter", "ChapterSummary", "ChapterInput",
                 "Section", "Error", "BookList", "ChapterList", "Health", "Ready"):
        assert name in schemas, f"components/schemas/{name} is missing"
    for name in ("User", "Tokens", "AuthResult", "Me", "ApiKey", "ApiKeyCreated", "ApiKeyInput",
                 "ApiKeyList", "Preferences", "PreferencesInput"):
        assert name in schemas, f"components/schemas/{name} is missing"
    for name in ("Job", "JobStatus", "JobList", "JobAccepted", "JobSubmitInput", "BookImportResult"):
        assert name in schemas, f"components/schemas/{name} is missing"
    for name in ("SearchHit", "SearchResults", "ChatQueryInput", "ChatAnswer", "ChatCitation",
                 "ChatContextInput", "ChatContextCreated", "ChatSession", "ChatSessionList",
                 "ChatMessage", "ChatMessageList", "ChatCompatInput", "ChatCompatAnswer"):
        assert name in schemas, f"components/schemas/{name} is missing"
    assert "llm" in schemas["Ready"]["properties"]["checks"]["properties"]
    assert schemas["JobStatus"]["enum"] == JOB_STATUSES, schemas["JobStatus"]["enum"]
    codes = schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert "rate_limited" in codes, codes
    key = SPEC["components"]["securitySchemes"]["ApiKey"]
    assert (key["type"], key["in"], key["name"]) == ("apiKey", "header", "X-API-Key")
    bearer = SPEC["components"]["securitySchemes"]["BearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    for method, path in spec_operations():
        op = SPEC["paths"][path][method.lower()]
        assert op.get("operationId"), f"{method} {path} has no operationId"
        # Content: writes are documented as taking a bearer token or an API key
        # (either one), reads as open, except a chapter made for one reader
        # (personalized, translated), which takes either credential too.
        security = op.get("security", SPEC.get("security", []))
        if path.startswith("/api/v1/books"):
            write = method not in ("GET", "HEAD", "OPTIONS") or path.endswith(
                ("/personalized", "/translated/{language_code}"))
            assert ({"ApiKey": []} in security) == write, (method, path)
            assert ({"BearerAuth": []} in security) == write, (method, path)
        # The signed-in user's routes take either credential too.
        if path in ("/api/v1/auth/me", "/api/v1/users/me/preferences") or "/api-keys" in path:
            assert {"ApiKey": []} in security and {"BearerAuth": []} in security, (method, path)
        # Jobs are per user: every jobs route takes either credential.
        if path.startswith("/api/v1/jobs"):
            assert {"ApiKey": []} in security and {"BearerAuth": []} in security, (method, path)
        # The chatbot takes either credential; search is public.
        if path.startswith(("/api/v1/chatbot", "/api/v1/chat/")) or path == "/chat":
            assert {"ApiKey": []} in security and {"BearerAuth": []} in security, (method, path)
        if path == "/api/v1/search":
            assert not security, (method, path)


def test_every_route_in_routes_c_is_documented():
    documented = {(m, shape(p)) for m, p in spec_operations()}
    missing = [f"{m} {p}" for m, p in source_routes() if (m, shape(p)) not in documented]
    assert not missing, (f"routes in {ROUTES_C.relative_to(REPO_ROOT)} missing from "
                         f"{SPEC_PATH.relative_to(REPO_ROOT)}: {missing}")


@pytest.mark.parametrize("method,path,chapter_kind,accept", operation_cases())
def test_documented_operation_exists_on_server(request, server, world, method, path, chapter_kind, accept):
    label = f"{method} {path}" + (f" [{accept}]" if accept != "-" else "")
    op = SPEC["paths"][path][method.lower()]
    if "/audio" in path:
        with_audio(world)
    url = concrete_path(path, world, chapter_kind)
    if needs_test_jobs(op) and not test_jobs_enabled(server):
        assert "{" not in path, f"{label}: path ids are the shared server's"
        server = request.getfixturevalue("jobs_server")
    kw = request_kwargs(op, label, server, world, path)
    kw["headers"] = dict(ADMIN) if op.get("security") else {}
    kw["params"] = query_params(op, path)
    idempotent = header_param(op, "Idempotency-Key")
    if idempotent:
        kw["headers"]["Idempotency-Key"] = uniq("openapi")
    documented = deref(op["responses"])
    if accept == SSE:
        kw["headers"]["Accept"] = SSE
    streams = accept == SSE or (accept == "-" and any(
        SSE in (deref(resp).get("content") or {}) for resp in documented.values()))
    if streams:
        kw.update(stream=True, timeout=HTTP_TIMEOUT)
    r = server.request(method, url, **kw)
    got = f"{label} -> {url}: {r.status_code} {'(stream)' if streams else r.text[:300]}"

    assert r.status_code != 405, f"the server does not allow the documented method: {got}"
    if r.status_code == 404 and r.headers.get("Content-Type", "").startswith("application/json"):
        assert r.json().get("error", {}).get("message") != "no such route", (
            f"the server has no such route: {got}")
    assert str(r.status_code) in documented, (
        f"status {r.status_code} is not documented (documented: {sorted(documented)}): {got}")
    assert 200 <= r.status_code < 300, f"real ids and the documented example should succeed: {got} {r.text[:300]}"
    assert r.headers.get("X-Request-ID"), f"no X-Request-ID: {got}"

    resp = deref(documented[str(r.status_code)])
    for name, header in (resp.get("headers") or {}).items():
        if deref(header).get("required") is False:
            continue  # only on some responses (e.g. Idempotent-Replayed)
        assert r.headers.get(name), f"documented header {name} missing: {got}"
    content = resp.get("content") or {}
    if streams and SSE in content:
        assert r.headers.get("Content-Type", "").startswith(SSE), got
        for name in ("Cache-Control", "X-Accel-Buffering"):  # documented for the stream
            if name in (resp.get("headers") or {}):
                assert r.headers.get(name), f"documented header {name} missing on the stream: {got}"
        check_event_stream(r, resp, label, got)
        return
    media = content.get("application/json")
    if media is None:
        # A documented binary or text body (audio/mpeg): its type must match.
        ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
        assert not r.content or ctype in content, f"undocumented response body: {got}"
        return
    assert r.headers.get("Content-Type", "").startswith("application/json"), got
    problems = conform(media["schema"], r.json())
    assert not problems, f"{got}\nthe body does not match the documented schema:\n" + "\n".join(problems)
    if idempotent:
        # The same request with the same key: the first job again, nothing new.
        again = server.request(method, url, **kw)
        assert again.status_code == r.status_code, f"{label} repeated: {again.status_code} {again.text[:300]}"
        assert again.json()["job_id"] == r.json()["job_id"], (r.text, again.text)
        assert again.headers.get("Idempotent-Replayed") == "true", dict(again.headers)
        assert again.headers.get("Location") == r.headers.get("Location"), dict(again.headers)
        assert not conform(media["schema"], again.json()), again.text
        assert "Idempotent-Replayed" in (resp.get("headers") or {}), (
            f"{label}: Idempotent-Replayed is sent but not documented")


@pytest.mark.parametrize("path", list(SPEC["paths"]))
def test_allow_header_lists_exactly_the_documented_methods(server, world, path):
    url = concrete_path(path, world, "id")
    # Every documented path that matches this URL: /books/import is also a
    # /books/{book_id}, and the server's Allow is about the URL.
    documented = {m.upper() for p, item in SPEC["paths"].items() if path_regex(p).fullmatch(url)
                  for m in item if m in HTTP_METHODS}
    expected = documented | {"OPTIONS"} | ({"HEAD"} if "GET" in documented else set())
    r = server.request("OPTIONS", url)
    assert r.status_code == 204, f"OPTIONS {path}: {r.status_code} {r.text[:200]}"
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allow == expected, (
        f"{path}: server allows {sorted(allow)}, document has {sorted(expected)} "
        f"(undocumented: {sorted(allow - expected)}, not served: {sorted(expected - allow)})")
