/*
 * Versioned schema migrations. Each entry has its SQL for each dialect; they are
 * applied in order, each in its own transaction together with its row in
 * schema_migrations, so a crash leaves the schema at a known version. The
 * version is re-read inside the transaction: two processes starting at once
 * (a server and `bookd import`) cannot apply the same migration twice.
 */
#include <string.h>
#include <time.h>

#include "../core/normalize.h"
#include "changes.h"
#include "db_int.h"

struct migration {
	int version;
	const char *name;
	const char *sqlite;
	const char *postgres;
};

static const struct migration migrations[] = {
	{ 1, "books and chapters",
	  "CREATE TABLE books (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  title TEXT NOT NULL,\n"
	  "  author TEXT,\n"
	  "  language TEXT NOT NULL DEFAULT 'en',\n"
	  "  edition TEXT, publisher TEXT, pages INTEGER, publish_date TEXT, cover_url TEXT,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  updated_at INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE INDEX books_title_author ON books(title, author);\n"
	  "CREATE TABLE book_isbns (\n"
	  "  isbn13 TEXT PRIMARY KEY,\n"
	  "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,\n"
	  "  isbn TEXT NOT NULL,\n"
	  "  isbn_type TEXT NOT NULL,\n"
	  "  position INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE INDEX book_isbns_book ON book_isbns(book_id);\n"
	  "CREATE TABLE chapters (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,\n"
	  "  number INTEGER NOT NULL,\n"
	  "  title TEXT NOT NULL,\n"
	  "  content_markdown TEXT NOT NULL,\n"
	  "  summary TEXT,\n"
	  "  audio_url TEXT,\n"
	  "  word_count INTEGER NOT NULL,\n"
	  "  sections TEXT NOT NULL,\n"
	  "  source_key TEXT,\n"
	  "  rev INTEGER NOT NULL DEFAULT 1,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  updated_at INTEGER NOT NULL,\n"
	  "  UNIQUE (book_id, number)\n"
	  ");\n",
	  /* PostgreSQL */
	  "CREATE TABLE books (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  title TEXT NOT NULL,\n"
	  "  author TEXT,\n"
	  "  language TEXT NOT NULL DEFAULT 'en',\n"
	  "  edition TEXT, publisher TEXT, pages INTEGER, publish_date TEXT, cover_url TEXT,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL\n"
	  ");\n"
	  "CREATE INDEX books_title_author ON books(title, author);\n"
	  "CREATE TABLE book_isbns (\n"
	  "  isbn13 TEXT PRIMARY KEY,\n"
	  "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,\n"
	  "  isbn TEXT NOT NULL,\n"
	  "  isbn_type TEXT NOT NULL,\n"
	  "  position INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE INDEX book_isbns_book ON book_isbns(book_id);\n"
	  "CREATE TABLE chapters (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,\n"
	  "  number INTEGER NOT NULL,\n"
	  "  title TEXT NOT NULL,\n"
	  "  content_markdown TEXT NOT NULL,\n"
	  "  summary TEXT,\n"
	  "  audio_url TEXT,\n"
	  "  word_count INTEGER NOT NULL,\n"
	  "  sections TEXT NOT NULL,\n"
	  "  source_key TEXT,\n"
	  "  rev INTEGER NOT NULL DEFAULT 1,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL,\n"
	  "  UNIQUE (book_id, number)\n"
	  ");\n" },
	{ 2, "users, tokens, api keys, preferences",
	  "CREATE TABLE users (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  email TEXT NOT NULL UNIQUE,\n"
	  "  password_hash TEXT,\n"
	  "  display_name TEXT,\n"
	  "  role TEXT NOT NULL DEFAULT 'reader',\n"
	  "  external_sub TEXT UNIQUE,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  updated_at INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE TABLE refresh_tokens (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
	  "  family_id TEXT NOT NULL,\n"
	  "  token_hash TEXT NOT NULL UNIQUE,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  expires_at INTEGER NOT NULL,\n"
	  "  used_at INTEGER,\n"
	  "  revoked_at INTEGER\n"
	  ");\n"
	  "CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);\n"
	  "CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);\n"
	  "CREATE TABLE api_keys (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
	  "  name TEXT NOT NULL,\n"
	  "  prefix TEXT NOT NULL,\n"
	  "  key_hash TEXT NOT NULL UNIQUE,\n"
	  "  scopes TEXT NOT NULL,\n"
	  "  book_ids TEXT,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  last_used_at INTEGER\n"
	  ");\n"
	  "CREATE INDEX api_keys_user ON api_keys(user_id);\n"
	  "CREATE TABLE preferences (\n"
	  "  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,\n"
	  "  data TEXT NOT NULL,\n"
	  "  updated_at INTEGER NOT NULL\n"
	  ");\n",
	  /* PostgreSQL */
	  "CREATE TABLE users (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  email TEXT NOT NULL UNIQUE,\n"
	  "  password_hash TEXT,\n"
	  "  display_name TEXT,\n"
	  "  role TEXT NOT NULL DEFAULT 'reader',\n"
	  "  external_sub TEXT UNIQUE,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL\n"
	  ");\n"
	  "CREATE TABLE refresh_tokens (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
	  "  family_id TEXT NOT NULL,\n"
	  "  token_hash TEXT NOT NULL UNIQUE,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  expires_at BIGINT NOT NULL,\n"
	  "  used_at BIGINT,\n"
	  "  revoked_at BIGINT\n"
	  ");\n"
	  "CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);\n"
	  "CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);\n"
	  "CREATE TABLE api_keys (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
	  "  name TEXT NOT NULL,\n"
	  "  prefix TEXT NOT NULL,\n"
	  "  key_hash TEXT NOT NULL UNIQUE,\n"
	  "  scopes TEXT NOT NULL,\n"
	  "  book_ids TEXT,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  last_used_at BIGINT\n"
	  ");\n"
	  "CREATE INDEX api_keys_user ON api_keys(user_id);\n"
	  "CREATE TABLE preferences (\n"
	  "  user_id TEXT COLLATE \"C\" PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,\n"
	  "  data TEXT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL\n"
	  ");\n" },
	{ 3, "jobs",
	  "CREATE TABLE jobs (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  type TEXT NOT NULL,\n"
	  "  payload TEXT NOT NULL,\n"
	  "  status TEXT NOT NULL,\n"
	  "  priority INTEGER NOT NULL DEFAULT 0,\n"
	  "  run_at INTEGER NOT NULL,\n"
	  "  attempts INTEGER NOT NULL DEFAULT 0,\n"
	  "  max_attempts INTEGER NOT NULL,\n"
	  "  lease_owner TEXT,\n"
	  "  lease_until INTEGER,\n"
	  "  heartbeat_at INTEGER,\n"
	  "  progress INTEGER NOT NULL DEFAULT 0,\n"
	  "  step TEXT,\n"
	  "  steps_done INTEGER NOT NULL DEFAULT 0,\n"
	  "  steps_total INTEGER NOT NULL DEFAULT 0,\n"
	  "  checkpoint TEXT,\n"
	  "  result TEXT,\n"
	  "  error TEXT,\n"
	  "  cancel_requested INTEGER NOT NULL DEFAULT 0,\n"
	  "  active_ms INTEGER NOT NULL DEFAULT 0,\n"
	  "  idempotency_key TEXT,\n"
	  "  owner_user_id TEXT,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  updated_at INTEGER NOT NULL,\n"
	  "  started_at INTEGER,\n"
	  "  finished_at INTEGER\n"
	  ");\n"
	  "CREATE UNIQUE INDEX jobs_idempotency ON jobs(owner_user_id, idempotency_key) "
	  "WHERE idempotency_key IS NOT NULL;\n"
	  "CREATE INDEX jobs_claim ON jobs(status, priority, run_at);\n"
	  "CREATE INDEX jobs_owner ON jobs(owner_user_id, id);\n",
	  /* PostgreSQL */
	  "CREATE TABLE jobs (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  type TEXT NOT NULL,\n"
	  "  payload TEXT NOT NULL,\n"
	  "  status TEXT NOT NULL,\n"
	  "  priority INTEGER NOT NULL DEFAULT 0,\n"
	  "  run_at BIGINT NOT NULL,\n"
	  "  attempts INTEGER NOT NULL DEFAULT 0,\n"
	  "  max_attempts INTEGER NOT NULL,\n"
	  "  lease_owner TEXT,\n"
	  "  lease_until BIGINT,\n"
	  "  heartbeat_at BIGINT,\n"
	  "  progress INTEGER NOT NULL DEFAULT 0,\n"
	  "  step TEXT,\n"
	  "  steps_done INTEGER NOT NULL DEFAULT 0,\n"
	  "  steps_total INTEGER NOT NULL DEFAULT 0,\n"
	  "  checkpoint TEXT,\n"
	  "  result TEXT,\n"
	  "  error TEXT,\n"
	  "  cancel_requested INTEGER NOT NULL DEFAULT 0,\n"
	  "  active_ms BIGINT NOT NULL DEFAULT 0,\n"
	  "  idempotency_key TEXT,\n"
	  "  owner_user_id TEXT,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL,\n"
	  "  started_at BIGINT,\n"
	  "  finished_at BIGINT\n"
	  ");\n"
	  "CREATE UNIQUE INDEX jobs_idempotency ON jobs(owner_user_id, idempotency_key) "
	  "WHERE idempotency_key IS NOT NULL;\n"
	  "CREATE INDEX jobs_claim ON jobs(status, priority, run_at);\n"
	  "CREATE INDEX jobs_owner ON jobs(owner_user_id, id);\n" },
	{ 4, "chunks, keyword index, embeddings",
	  "CREATE TABLE chunks (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,\n"
	  "  chapter_id TEXT NOT NULL REFERENCES chapters(id) ON DELETE CASCADE,\n"
	  "  ordinal INTEGER NOT NULL,\n"
	  "  heading TEXT,\n"
	  "  heading_path TEXT NOT NULL,\n"
	  "  anchor TEXT,\n"
	  "  char_start INTEGER NOT NULL,\n"
	  "  char_end INTEGER NOT NULL,\n"
	  "  text TEXT NOT NULL,\n"
	  "  token_count INTEGER NOT NULL,\n"
	  "  content_hash TEXT NOT NULL,\n"
	  "  owner_user_id TEXT,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  updated_at INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE INDEX chunks_chapter ON chunks(chapter_id, ordinal);\n"
	  "CREATE INDEX chunks_book ON chunks(book_id);\n"
	  "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading_path, text, content='chunks', content_rowid='rowid',\n"
	  "  tokenize='porter unicode61 remove_diacritics 2');\n"
	  "CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN\n"
	  "  INSERT INTO chunks_fts(rowid, heading_path, text) VALUES (new.rowid, new.heading_path, new.text);\n"
	  "END;\n"
	  "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN\n"
	  "  INSERT INTO chunks_fts(chunks_fts, rowid, heading_path, text) VALUES ('delete', old.rowid, old.heading_path, old.text);\n"
	  "END;\n"
	  "CREATE TRIGGER chunks_au AFTER UPDATE OF heading_path, text ON chunks BEGIN\n"
	  "  INSERT INTO chunks_fts(chunks_fts, rowid, heading_path, text) VALUES ('delete', old.rowid, old.heading_path, old.text);\n"
	  "  INSERT INTO chunks_fts(rowid, heading_path, text) VALUES (new.rowid, new.heading_path, new.text);\n"
	  "END;\n"
	  "CREATE TABLE embeddings (\n"
	  "  chunk_id TEXT NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,\n"
	  "  model TEXT NOT NULL,\n"
	  "  dim INTEGER NOT NULL,\n"
	  "  vector TEXT NOT NULL,\n"
	  "  content_hash TEXT NOT NULL,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  PRIMARY KEY (chunk_id, model)\n"
	  ");\n"
	  "CREATE INDEX embeddings_model ON embeddings(model, created_at);\n",
	  /* PostgreSQL */
	  "CREATE TABLE chunks (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,\n"
	  "  chapter_id TEXT NOT NULL REFERENCES chapters(id) ON DELETE CASCADE,\n"
	  "  ordinal INTEGER NOT NULL,\n"
	  "  heading TEXT,\n"
	  "  heading_path TEXT NOT NULL,\n"
	  "  anchor TEXT,\n"
	  "  char_start INTEGER NOT NULL,\n"
	  "  char_end INTEGER NOT NULL,\n"
	  "  text TEXT NOT NULL,\n"
	  "  token_count INTEGER NOT NULL,\n"
	  "  content_hash TEXT NOT NULL,\n"
	  "  owner_user_id TEXT,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL,\n"
	  "  tsv tsvector GENERATED ALWAYS AS (setweight(to_tsvector('english', heading_path), 'A') ||\n"
	  "    setweight(to_tsvector('english', text), 'B')) STORED\n"
	  ");\n"
	  "CREATE INDEX chunks_chapter ON chunks(chapter_id, ordinal);\n"
	  "CREATE INDEX chunks_book ON chunks(book_id);\n"
	  "CREATE INDEX chunks_tsv ON chunks USING GIN (tsv);\n"
	  "CREATE TABLE embeddings (\n"
	  "  chunk_id TEXT NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,\n"
	  "  model TEXT NOT NULL,\n"
	  "  dim INTEGER NOT NULL,\n"
	  "  vector TEXT NOT NULL,\n"
	  "  content_hash TEXT NOT NULL,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  PRIMARY KEY (chunk_id, model)\n"
	  ");\n"
	  "CREATE INDEX embeddings_model ON embeddings(model, created_at);\n" },
	{ 5, "chat sessions and messages",
	  "CREATE TABLE chat_sessions (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  user_id TEXT REFERENCES users(id) ON DELETE CASCADE,\n"
	  "  book_id TEXT,\n"
	  "  title TEXT,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  updated_at INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE INDEX chat_sessions_user ON chat_sessions(user_id, updated_at);\n"
	  "CREATE TABLE chat_messages (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  session_id TEXT NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,\n"
	  "  role TEXT NOT NULL,\n"
	  "  content TEXT NOT NULL,\n"
	  "  citations TEXT,\n"
	  "  selected_text TEXT,\n"
	  "  provider TEXT,\n"
	  "  model TEXT,\n"
	  "  prompt_tokens INTEGER NOT NULL DEFAULT 0,\n"
	  "  completion_tokens INTEGER NOT NULL DEFAULT 0,\n"
	  "  latency_ms INTEGER NOT NULL DEFAULT 0,\n"
	  "  created_at INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE INDEX chat_messages_session ON chat_messages(session_id, id);\n"
	  "CREATE TABLE chat_contexts (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  session_id TEXT NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,\n"
	  "  text TEXT NOT NULL,\n"
	  "  book_id TEXT,\n"
	  "  chapter_id TEXT,\n"
	  "  created_at INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE INDEX chat_contexts_session ON chat_contexts(session_id, id);\n"
	  "CREATE TABLE chat_usage (\n"
	  "  subject TEXT NOT NULL,\n"
	  "  day TEXT NOT NULL,\n"
	  "  tokens INTEGER NOT NULL,\n"
	  "  PRIMARY KEY (subject, day)\n"
	  ");\n",
	  /* PostgreSQL */
	  "CREATE TABLE chat_sessions (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  user_id TEXT REFERENCES users(id) ON DELETE CASCADE,\n"
	  "  book_id TEXT,\n"
	  "  title TEXT,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL\n"
	  ");\n"
	  "CREATE INDEX chat_sessions_user ON chat_sessions(user_id, updated_at);\n"
	  "CREATE TABLE chat_messages (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  session_id TEXT NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,\n"
	  "  role TEXT NOT NULL,\n"
	  "  content TEXT NOT NULL,\n"
	  "  citations TEXT,\n"
	  "  selected_text TEXT,\n"
	  "  provider TEXT,\n"
	  "  model TEXT,\n"
	  "  prompt_tokens INTEGER NOT NULL DEFAULT 0,\n"
	  "  completion_tokens INTEGER NOT NULL DEFAULT 0,\n"
	  "  latency_ms INTEGER NOT NULL DEFAULT 0,\n"
	  "  created_at BIGINT NOT NULL\n"
	  ");\n"
	  "CREATE INDEX chat_messages_session ON chat_messages(session_id, id);\n"
	  "CREATE TABLE chat_contexts (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  session_id TEXT NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,\n"
	  "  text TEXT NOT NULL,\n"
	  "  book_id TEXT,\n"
	  "  chapter_id TEXT,\n"
	  "  created_at BIGINT NOT NULL\n"
	  ");\n"
	  "CREATE INDEX chat_contexts_session ON chat_contexts(session_id, id);\n"
	  "CREATE TABLE chat_usage (\n"
	  "  subject TEXT NOT NULL,\n"
	  "  day TEXT NOT NULL,\n"
	  "  tokens BIGINT NOT NULL,\n"
	  "  PRIMARY KEY (subject, day)\n"
	  ");\n" },
	/* What caches in front of the database must hear of (changes.h): on
	 * SQLite no other process could tell them, so there is nothing to do. */
	{ 6, "change notifications",
	  "SELECT 1;\n",
	  /* PostgreSQL */
	  "CREATE FUNCTION bookd_changed() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	  "DECLARE r record;\n"
	  "BEGIN\n"
	  "  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;\n"
	  "  CASE TG_TABLE_NAME\n"
	  "    WHEN 'books' THEN PERFORM pg_notify('" CHANGES_CHANNEL "', 'book:' || r.id);\n"
	  "    WHEN 'chapters' THEN PERFORM pg_notify('" CHANGES_CHANNEL "', 'book:' || r.book_id);\n"
	  "    WHEN 'users' THEN PERFORM pg_notify('" CHANGES_CHANNEL "', 'user:' || r.id);\n"
	  "    WHEN 'preferences' THEN PERFORM pg_notify('" CHANGES_CHANNEL "', 'user:' || r.user_id);\n"
	  "    ELSE PERFORM pg_notify('" CHANGES_CHANNEL "', 'keys');\n"
	  "  END CASE;\n"
	  "  RETURN NULL;\n"
	  "END $$;\n"
	  "CREATE TRIGGER books_changed AFTER UPDATE OR DELETE ON books\n"
	  "  FOR EACH ROW EXECUTE FUNCTION bookd_changed();\n"
	  "CREATE TRIGGER chapters_changed AFTER INSERT OR UPDATE OR DELETE ON chapters\n"
	  "  FOR EACH ROW EXECUTE FUNCTION bookd_changed();\n"
	  "CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users\n"
	  "  FOR EACH ROW EXECUTE FUNCTION bookd_changed();\n"
	  "CREATE TRIGGER preferences_changed AFTER INSERT OR UPDATE OR DELETE ON preferences\n"
	  "  FOR EACH ROW EXECUTE FUNCTION bookd_changed();\n"
	  "CREATE TRIGGER api_keys_changed AFTER UPDATE OF user_id, key_hash, scopes, book_ids OR DELETE\n"
	  "  ON api_keys FOR EACH ROW EXECUTE FUNCTION bookd_changed();\n" },
	/* Inserts are indexed by store_chunk_insert (see there); deletes and
	 * text updates, rarer and reached by cascades too, keep their triggers. */
	{ 7, "keyword index without the insert trigger",
	  "DROP TRIGGER chunks_ai;\n",
	  /* PostgreSQL: the tsvector column is generated */
	  "SELECT 1;\n" },
	/* Book and chapter filters as terms of the keyword index (a `scope`
	 * column of two tokens, "b<book id>" and "c<chapter id>" without dashes,
	 * weighted 0): FTS5 intersects them with the query's terms, where a
	 * `rowid IN (the book's chunks)` filter listed the whole book per query. */
	{ 8, "book and chapter filters in the keyword index",
	  "ALTER TABLE chunks ADD COLUMN scope TEXT GENERATED ALWAYS AS\n"
	  "  ('b' || replace(book_id, '-', '') || ' c' || replace(chapter_id, '-', '')) VIRTUAL;\n"
	  "DROP TRIGGER chunks_ad;\n"
	  "DROP TRIGGER chunks_au;\n"
	  "DROP TABLE chunks_fts;\n"
	  "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading_path, text, scope, content='chunks',\n"
	  "  content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');\n"
	  "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');\n"
	  "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN\n"
	  "  INSERT INTO chunks_fts(chunks_fts, rowid, heading_path, text, scope)\n"
	  "    VALUES ('delete', old.rowid, old.heading_path, old.text, old.scope);\n"
	  "END;\n"
	  "CREATE TRIGGER chunks_au AFTER UPDATE OF heading_path, text ON chunks BEGIN\n"
	  "  INSERT INTO chunks_fts(chunks_fts, rowid, heading_path, text, scope)\n"
	  "    VALUES ('delete', old.rowid, old.heading_path, old.text, old.scope);\n"
	  "  INSERT INTO chunks_fts(rowid, heading_path, text, scope) VALUES (new.rowid, new.heading_path, new.text, new.scope);\n"
	  "END;\n",
	  "SELECT 1;\n" },
	/* Accounts are found by the lookup form of their address (users_email.c),
	 * computed in C at start-up for the rows made before (users_new). Rows
	 * whose forms collide are flagged, all but the oldest, and reported:
	 * never merged. The unique index holds where there is no collision. */
	{ 9, "email lookup form",
	  "ALTER TABLE users ADD COLUMN email_norm TEXT;\n"
	  "ALTER TABLE users ADD COLUMN email_dup INTEGER NOT NULL DEFAULT 0;\n"
	  "CREATE UNIQUE INDEX users_email_norm ON users(email_norm) WHERE email_dup = 0;\n"
	  "CREATE INDEX users_email_norm_all ON users(email_norm);\n",
	  NULL },
	/* Conversations keyed by the id a client minted (client_key, as given),
	 * one per owner: a user's, or the anonymous callers' shared space (''),
	 * where the key alone is the capability. And readers' ratings of answers,
	 * one per answer and rater (a user, or an address). */
	{ 10, "client session keys and answer feedback",
	  "ALTER TABLE chat_sessions ADD COLUMN client_key TEXT;\n"
	  "CREATE UNIQUE INDEX chat_sessions_client ON chat_sessions(coalesce(user_id, ''), client_key)\n"
	  "  WHERE client_key IS NOT NULL;\n"
	  "CREATE TABLE chat_feedback (\n"
	  "  id TEXT PRIMARY KEY,\n"
	  "  message_id TEXT NOT NULL REFERENCES chat_messages(id) ON DELETE CASCADE,\n"
	  "  rater TEXT NOT NULL,\n"
	  "  user_id TEXT REFERENCES users(id) ON DELETE SET NULL,\n"
	  "  rating INTEGER NOT NULL,\n"
	  "  comment TEXT,\n"
	  "  created_at INTEGER NOT NULL\n"
	  ");\n"
	  "CREATE UNIQUE INDEX chat_feedback_rater ON chat_feedback(message_id, rater);\n",
	  /* PostgreSQL */
	  "ALTER TABLE chat_sessions ADD COLUMN client_key TEXT;\n"
	  "CREATE UNIQUE INDEX chat_sessions_client ON chat_sessions((coalesce(user_id, '')), client_key)\n"
	  "  WHERE client_key IS NOT NULL;\n"
	  "CREATE TABLE chat_feedback (\n"
	  "  id TEXT COLLATE \"C\" PRIMARY KEY,\n"
	  "  message_id TEXT NOT NULL REFERENCES chat_messages(id) ON DELETE CASCADE,\n"
	  "  rater TEXT NOT NULL,\n"
	  "  user_id TEXT REFERENCES users(id) ON DELETE SET NULL,\n"
	  "  rating INTEGER NOT NULL,\n"
	  "  comment TEXT,\n"
	  "  created_at BIGINT NOT NULL\n"
	  ");\n"
	  "CREATE UNIQUE INDEX chat_feedback_rater ON chat_feedback(message_id, rater);\n" },
	/* The BookBytes pipeline (services/pipeline.c): where a chapter's summary
	 * came from and the revision it summarises, and per kind of audio
	 * (summary, whole chapter) its storage key, length, voice, the signature
	 * of the text spoken (so a resumed job skips what is done) and how many
	 * syntheses were committed. */
	{ 11, "chapter summaries and audio",
	  "ALTER TABLE chapters ADD COLUMN summary_source TEXT;\n"
	  "ALTER TABLE chapters ADD COLUMN summary_rev INTEGER;\n"
	  "ALTER TABLE chapters ADD COLUMN summary_audio_key TEXT;\n"
	  "ALTER TABLE chapters ADD COLUMN summary_audio_ms INTEGER;\n"
	  "ALTER TABLE chapters ADD COLUMN summary_audio_sig TEXT;\n"
	  "ALTER TABLE chapters ADD COLUMN chapter_audio_key TEXT;\n"
	  "ALTER TABLE chapters ADD COLUMN chapter_audio_ms INTEGER;\n"
	  "ALTER TABLE chapters ADD COLUMN chapter_audio_sig TEXT;\n"
	  "ALTER TABLE chapters ADD COLUMN audio_voice TEXT;\n"
	  "ALTER TABLE chapters ADD COLUMN syntheses INTEGER NOT NULL DEFAULT 0;\n",
	  NULL },
	/* Book metadata by ISBN (services/books_isbn.c): the fields it adds, which
	 * fields an editor set (`edited`) and which metadata set (`meta_fields`),
	 * as enum book_field bits; editions grouped by `edition_group` and
	 * linked, older to newer in one language, by `superseded_by` (no foreign
	 * key: copy-data inserts books in id order, and a newer edition may be
	 * the older row). An ISBN-10 and its ISBN-13 are two rows of one book:
	 * the key becomes (isbn13, isbn_type). */
	{ 12, "book metadata, editions, both ISBN forms",
	  "ALTER TABLE books ADD COLUMN subtitle TEXT;\n"
	  "ALTER TABLE books ADD COLUMN description TEXT;\n"
	  "ALTER TABLE books ADD COLUMN subjects TEXT;\n"
	  "ALTER TABLE books ADD COLUMN metadata_source TEXT;\n"
	  "ALTER TABLE books ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;\n"
	  "ALTER TABLE books ADD COLUMN meta_fields INTEGER NOT NULL DEFAULT 0;\n"
	  "ALTER TABLE books ADD COLUMN edition_group TEXT;\n"
	  "ALTER TABLE books ADD COLUMN superseded_by TEXT;\n"
	  "CREATE INDEX books_edition_group ON books(edition_group);\n"
	  "CREATE INDEX books_superseded_by ON books(superseded_by);\n"
	  "CREATE TABLE book_isbns_new (\n"
	  "  isbn13 TEXT NOT NULL,\n"
	  "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,\n"
	  "  isbn TEXT NOT NULL,\n"
	  "  isbn_type TEXT NOT NULL,\n"
	  "  position INTEGER NOT NULL,\n"
	  "  PRIMARY KEY (isbn13, isbn_type)\n"
	  ");\n"
	  "INSERT INTO book_isbns_new (isbn13, book_id, isbn, isbn_type, position)\n"
	  "  SELECT isbn13, book_id, isbn, isbn_type, position FROM book_isbns;\n"
	  "DROP TABLE book_isbns;\n"
	  "ALTER TABLE book_isbns_new RENAME TO book_isbns;\n"
	  "CREATE INDEX book_isbns_book ON book_isbns(book_id);\n",
	  /* PostgreSQL */
	  "ALTER TABLE books ADD COLUMN subtitle TEXT;\n"
	  "ALTER TABLE books ADD COLUMN description TEXT;\n"
	  "ALTER TABLE books ADD COLUMN subjects TEXT;\n"
	  "ALTER TABLE books ADD COLUMN metadata_source TEXT;\n"
	  "ALTER TABLE books ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;\n"
	  "ALTER TABLE books ADD COLUMN meta_fields INTEGER NOT NULL DEFAULT 0;\n"
	  "ALTER TABLE books ADD COLUMN edition_group TEXT;\n"
	  "ALTER TABLE books ADD COLUMN superseded_by TEXT;\n"
	  "CREATE INDEX books_edition_group ON books(edition_group);\n"
	  "CREATE INDEX books_superseded_by ON books(superseded_by);\n"
	  "ALTER TABLE book_isbns DROP CONSTRAINT book_isbns_pkey;\n"
	  "ALTER TABLE book_isbns ADD PRIMARY KEY (isbn13, isbn_type);\n" },
	/* Reading in other languages and for other readers (services/transform.c):
	 * each section's machine output cached by (source hash, target, model,
	 * prompt version) — a second node's insert of the same key is a no-op —
	 * with its source text, model and time; editors' translations per
	 * (chapter, language, section anchor), which always win; a glossary per
	 * book. */
	{ 13, "section translations, human translations, glossaries",
	  "CREATE TABLE section_transforms (\n"
	  "  source_hash TEXT NOT NULL,\n"
	  "  target TEXT NOT NULL,\n"
	  "  model TEXT NOT NULL,\n"
	  "  prompt_version INTEGER NOT NULL,\n"
	  "  source_text TEXT NOT NULL,\n"
	  "  output TEXT NOT NULL,\n"
	  "  origin TEXT NOT NULL,\n"
	  "  answered_by TEXT,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  PRIMARY KEY (source_hash, target, model, prompt_version)\n"
	  ");\n"
	  "CREATE INDEX section_transforms_target ON section_transforms(target);\n"
	  "CREATE TABLE human_translations (\n"
	  "  chapter_id TEXT NOT NULL REFERENCES chapters(id) ON DELETE CASCADE,\n"
	  "  lang TEXT NOT NULL,\n"
	  "  anchor TEXT NOT NULL,\n"
	  "  position INTEGER NOT NULL,\n"
	  "  source_hash TEXT NOT NULL,\n"
	  "  content TEXT NOT NULL,\n"
	  "  editor_id TEXT,\n"
	  "  created_at BIGINT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL,\n"
	  "  PRIMARY KEY (chapter_id, lang, anchor)\n"
	  ");\n"
	  "CREATE TABLE book_glossaries (\n"
	  "  book_id TEXT PRIMARY KEY REFERENCES books(id) ON DELETE CASCADE,\n"
	  "  terms TEXT NOT NULL,\n"
	  "  updated_at BIGINT NOT NULL\n"
	  ");\n",
	  NULL },
	/* The keyword index sees the search form of a chunk (core/normalize.h):
	 * search_heading and search_text hold it where it differs from the text
	 * (NULL otherwise, so books in Latin script store nothing more), and the
	 * stored text stays as written, for quotes. `language` marks a chunk of a
	 * translation (NULL: the chapter's own text); on SQLite a translation's
	 * `scope` has two more filter terms, "lt" and "l<tag without dashes>",
	 * and the original text is `NOT scope : "lt"`. SQLite indexes through the view chunks_search, so 'rebuild'
	 * (copy-data) reads the search form too. */
	{ 14, "search form of Arabic-script text, chunk languages",
	  "ALTER TABLE chunks ADD COLUMN search_heading TEXT;\n"
	  "ALTER TABLE chunks ADD COLUMN search_text TEXT;\n"
	  "ALTER TABLE chunks ADD COLUMN language TEXT;\n"
	  "DROP TRIGGER chunks_ad;\n"
	  "DROP TRIGGER chunks_au;\n"
	  "DROP TABLE chunks_fts;\n"
	  "UPDATE chunks SET search_heading = bookd_search_form(heading_path), search_text = bookd_search_form(text)\n"
	  "  WHERE bookd_search_form(heading_path) IS NOT NULL OR bookd_search_form(text) IS NOT NULL;\n"
	  "CREATE INDEX chunks_language ON chunks(chapter_id, language);\n"
	  "CREATE VIEW chunks_search AS SELECT rowid AS rid, coalesce(search_heading, heading_path) AS heading_path,\n"
	  "  coalesce(search_text, text) AS text,\n"
	  "  scope || coalesce(' lt l' || lower(replace(language, '-', '')), '') AS scope FROM chunks;\n"
	  "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading_path, text, scope, content='chunks_search',\n"
	  "  content_rowid='rid', tokenize='porter unicode61 remove_diacritics 2');\n"
	  "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');\n"
	  "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN\n"
	  "  INSERT INTO chunks_fts(chunks_fts, rowid, heading_path, text, scope)\n"
	  "    VALUES ('delete', old.rowid, coalesce(old.search_heading, old.heading_path), coalesce(old.search_text, old.text),\n"
	  "      old.scope || coalesce(' lt l' || lower(replace(old.language, '-', '')), ''));\n"
	  "END;\n"
	  "CREATE TRIGGER chunks_au AFTER UPDATE OF heading_path, text, search_heading, search_text, language ON chunks BEGIN\n"
	  "  INSERT INTO chunks_fts(chunks_fts, rowid, heading_path, text, scope)\n"
	  "    VALUES ('delete', old.rowid, coalesce(old.search_heading, old.heading_path), coalesce(old.search_text, old.text),\n"
	  "      old.scope || coalesce(' lt l' || lower(replace(old.language, '-', '')), ''));\n"
	  "  INSERT INTO chunks_fts(rowid, heading_path, text, scope)\n"
	  "    VALUES (new.rowid, coalesce(new.search_heading, new.heading_path), coalesce(new.search_text, new.text),\n"
	  "      new.scope || coalesce(' lt l' || lower(replace(new.language, '-', '')), ''));\n"
	  "END;\n",
	  /* PostgreSQL: the same table as translate() (normalize.h), for the rows already there */
	  "ALTER TABLE chunks ADD COLUMN search_heading TEXT;\n"
	  "ALTER TABLE chunks ADD COLUMN search_text TEXT;\n"
	  "ALTER TABLE chunks ADD COLUMN language TEXT;\n"
	  "UPDATE chunks SET search_heading = NULLIF(translate(heading_path, '" NORM_FROM "', '" NORM_TO "'), heading_path),\n"
	  "  search_text = NULLIF(translate(text, '" NORM_FROM "', '" NORM_TO "'), text);\n"
	  "ALTER TABLE chunks DROP COLUMN tsv;\n"
	  "ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS\n"
	  "  (setweight(to_tsvector('english', coalesce(search_heading, heading_path)), 'A') ||\n"
	  "   setweight(to_tsvector('english', coalesce(search_text, text)), 'B')) STORED;\n"
	  "CREATE INDEX chunks_tsv ON chunks USING GIN (tsv);\n"
	  "CREATE INDEX chunks_language ON chunks(chapter_id, language);\n" },
};

#define MIGRATION_LOCK 0x626f6f6b64 /* "bookd" */

#define SCHEMA_TABLE_SQL                                                                   \
	"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "      \
	"name TEXT NOT NULL, applied_at BIGINT NOT NULL)"

static int read_version(void *ctx, const db_row *r)
{
	*(int *)ctx = db_row_is_null(r, 0) ? 0 : (int)db_row_int(r, 0);
	return 0;
}

DB_STMT(max_version, "SELECT max(version) FROM schema_migrations");
DB_STMT(migration_lock, "SELECT pg_advisory_lock($1)");
DB_STMT(migration_unlock, "SELECT pg_advisory_unlock($1)");
DB_STMT(migration_record, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)");

static int current_version(db_conn *c, int *v, struct err *e)
{
	*v = 0;
	return db_run(c, &max_version, NULL, 0, read_version, v, NULL, e);
}

int db_migrate(db *d, int *version, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	/* PostgreSQL: one migrator at a time across every process (two nodes
	 * starting on an empty database). SQLite's BEGIN IMMEDIATE serialises
	 * each migration already. */
	int pg = d->ops->dialect == DB_POSTGRES;
	struct db_val lock_key[] = { dbv_int(MIGRATION_LOCK) };
	if (pg && (rc = db_run(c, &migration_lock, lock_key, 1, NULL, NULL, NULL, e)) != 0)
		goto out;
	rc = d->ops->exec_script(c, SCHEMA_TABLE_SQL, e);
	if (rc)
		goto unlock;
	for (size_t i = 0; i < ARRAY_LEN(migrations); i++) {
		const struct migration *m = &migrations[i];
		const char *sql = d->ops->dialect == DB_POSTGRES && m->postgres ? m->postgres : m->sqlite;
		int v;
		if ((rc = db_begin(c, e)) != 0)
			goto unlock;
		if ((rc = current_version(c, &v, e)) != 0)
			goto fail;
		if (v >= m->version) {
			db_rollback(c);
			continue;
		}
		if ((rc = d->ops->exec_script(c, sql, e)) != 0) {
			char why[sizeof(e->msg)];
			memcpy(why, e->msg, sizeof(why)); /* e->msg is also the destination */
			err_set(e, rc, "migration %d (%s) failed: %s", m->version, m->name, why);
			goto fail;
		}
		struct db_val p[] = { dbv_int(m->version), dbv_text(m->name),
				      dbv_int((int64_t)time(NULL) * 1000) };
		if ((rc = db_run(c, &migration_record, p, 3, NULL, NULL, NULL, e)) != 0)
			goto fail;
		if ((rc = db_commit(c, e)) != 0)
			goto fail;
	}
	rc = current_version(c, version, e);
	goto unlock;
fail:
	db_rollback(c);
unlock:
	if (pg) {
		struct err ue = { 0 };
		if (db_run(c, &migration_unlock, lock_key, 1, NULL, NULL, NULL, &ue))
			c->broken = 1; /* the session ends, and its lock with it */
	}
out:
	db_release(c);
	return rc;
}
