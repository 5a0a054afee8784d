/*
 * The HTTP API: one file per resource. Handlers parse and validate requests,
 * call services, and map results to status codes and JSON; they hold no SQL.
 */
#ifndef BOOKD_API_H
#define BOOKD_API_H

#include <jansson.h>

#include "../core/cache.h"
#include "../core/config.h"
#include "../core/stop.h"
#include "../http/http.h"
#include "../http/router.h"
#include "../services/ratelimit.h"
#include "../services/users.h"

struct book;

/* What handlers share: set up once by `bookd serve`. */
struct app {
	const struct config *cfg;
	struct db *db;
	struct cache *chapters; /* rendered chapter responses */
	struct users *users;
	struct executor *hasher; /* password hashing, off the HTTP threads */
	struct jobs *jobs;
	struct search *search;
	struct executor *io; /* calls to providers (embeddings, LLMs), off the HTTP threads */
	struct chat *chat;
	struct executor *chat_exec; /* answers wait on language models: a pool of their own */
	struct ratelimit *chat_limit; /* anonymous questions per IP */
	struct ratelimit *text_limit; /* arbitrary texts transformed, per user or IP */
	struct stop *cancel;	      /* fired when shutdown stops waiting: give up, answer 503 */
	struct blob_store *blob;      /* audio files */
	struct tts *tts;	      /* voices (the job speaks; the API lists and checks) */
	struct transform *transform;  /* translated and personalised chapters */
	int64_t started_ms;
};

extern const struct route api_routes[];
extern const size_t api_nroutes;

/* ---- helpers (respond.c) ---- */

/* Maps a service error to its status and the API.md error object. */
void api_fail(http_req *req, const struct err *e);
/* Serialises and sends `v` (steals the reference). */
void api_json(http_req *req, int status, json_t *v);
/* Reads the body as a JSON object: 415 / 400 / 422 are answered here and -1
 * returned. */
int api_read_object(http_req *req, json_t **out);
/* Who is calling; answers 401 and returns -1 on a bad credential. */
int api_principal(http_req *req, struct app *app, struct principal *p);
/* Route authorizers (http_authorizer), run before the body is read: they
 * answer 401/403 and return -1, or keep the principal for api_principal.
 * _user: any signed-in caller; _book_write: may write the book of path
 * parameter 0 (none: create books); _upload: may write books (the book, when
 * named in the form, is the handler's to check). */
int api_authorize_user(http_req *req, void *app);
int api_authorize_book_write(http_req *req, void *app);
int api_authorize_upload(http_req *req, void *app);
/* Answers 401/403 and returns -1 unless the caller may write this book
 * (book_id NULL: create a book); the caller's principal in *p when not NULL. */
int api_require_book_write(http_req *req, struct app *app, const char *book_id, struct principal *p);
/* The calling user (the master key is the local admin); answers 401 and
 * returns -1 when there is none. api_user_of starts from a known principal. */
int api_user(http_req *req, struct app *app, struct principal *p, struct user *u);
int api_user_of(http_req *req, struct app *app, const struct principal *p, struct user *u);
/* Answers 429 with Retry-After. */
void api_rate_limited(http_req *req, const struct err *e, int retry_after);
/* ?limit= (default 20, 1..100) and ?cursor=; answers 422 and returns -1 on
 * a bad value. */
int api_page_params(http_req *req, int *limit, const char **cursor);
json_t *api_time(int64_t ms);

/* ---- handlers ---- */
void api_health(http_req *req, void *app);
void api_health_live(http_req *req, void *app);
void api_health_ready(http_req *req, void *app);

void api_books_list(http_req *req, void *app);
void api_books_create(http_req *req, void *app);
void api_books_get(http_req *req, void *app);
void api_books_update(http_req *req, void *app);
void api_books_delete(http_req *req, void *app);
void api_books_by_isbn(http_req *req, void *app);
json_t *api_book_json(const struct book *b);

void api_auth_register(http_req *req, void *app);
void api_auth_login(http_req *req, void *app);
void api_auth_refresh(http_req *req, void *app);
void api_auth_logout(http_req *req, void *app);
void api_auth_me(http_req *req, void *app);
void api_keys_create(http_req *req, void *app);
void api_keys_list(http_req *req, void *app);
void api_keys_delete(http_req *req, void *app);
void api_prefs_get(http_req *req, void *app);
void api_prefs_put(http_req *req, void *app);
void api_prefs_patch(http_req *req, void *app);

void api_books_import(http_req *req, void *app);
void api_books_reindex(http_req *req, void *app);
void api_search(http_req *req, void *app);
void api_chat_query(http_req *req, void *app);
/* The chat dialects of existing book sites (compat.c). */
void api_compat_chat(http_req *req, void *app);
void api_compat_v1_chat(http_req *req, void *app);
void api_compat_ask_stream(http_req *req, void *app);
void api_compat_session_new(http_req *req, void *app);
void api_compat_history(http_req *req, void *app);
void api_compat_feedback(http_req *req, void *app);
/* Translation and personalisation in the book sites' shapes (compat_reading.c). */
void api_compat_translate(http_req *req, void *app);
void api_compat_personalize(http_req *req, void *app);
void api_compat_content_chapter(http_req *req, void *app);
void api_feedback_list(http_req *req, void *app);
void api_chat_context(http_req *req, void *app);
void api_chat_sessions(http_req *req, void *app);
void api_chat_session_get(http_req *req, void *app);
void api_chat_session_delete(http_req *req, void *app);
void api_chat_messages(http_req *req, void *app);
void api_jobs_submit(http_req *req, void *app);
void api_jobs_list(http_req *req, void *app);
void api_jobs_get(http_req *req, void *app);
void api_jobs_cancel(http_req *req, void *app);
void api_jobs_events(http_req *req, void *app);
struct job;
json_t *api_job_json(const struct job *j);
/* The Idempotency-Key header (answers 422 and returns -1 when malformed). */
int api_idempotency_key(http_req *req, const char **key);
/* 202 {job_id, status} + Location (+ Idempotent-Replayed on a repeat). */
void api_job_accepted(http_req *req, const struct job *j, int existing);

void api_chapters_list(http_req *req, void *app);
void api_chapters_create(http_req *req, void *app);
void api_chapters_get(http_req *req, void *app);
void api_chapters_replace(http_req *req, void *app);
void api_chapters_delete(http_req *req, void *app);

/* The BookBytes pipeline (audio.c). */
void api_books_process(http_req *req, void *app);
void api_voices(http_req *req, void *app);
void api_chapter_audio(http_req *req, void *app);
void api_chapter_timings(http_req *req, void *app);
/* DELETE /books/{id}: the book, then its stored files. */
void api_books_delete_all(http_req *req, void *app);

/* Chapters for each reader (reading.c). */
void api_reading_translated(http_req *req, void *app);
void api_reading_personalized(http_req *req, void *app);
void api_reading_put_translation(http_req *req, void *app);
void api_reading_refresh(http_req *req, void *app);
void api_reading_translate_book(http_req *req, void *app);
void api_reading_glossary_get(http_req *req, void *app);
void api_reading_glossary_put(http_req *req, void *app);

#endif
