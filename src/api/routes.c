#include "api.h"

/* The route table. Order matters only where patterns overlap: the literal
 * /books/isbn/{isbn} comes before /books/{id}/... patterns of the same length. */
const struct route api_routes[] = {
	{ HTTP_GET, "/health", api_health, 0, NULL },
	{ HTTP_GET, "/health/live", api_health_live, 0, NULL },
	{ HTTP_GET, "/health/ready", api_health_ready, 0, NULL },

	{ HTTP_POST, "/api/v1/auth/register", api_auth_register, 0, NULL },
	{ HTTP_POST, "/api/v1/auth/login", api_auth_login, 0, NULL },
	{ HTTP_POST, "/api/v1/auth/refresh", api_auth_refresh, 0, NULL },
	{ HTTP_POST, "/api/v1/auth/logout", api_auth_logout, 0, NULL },
	{ HTTP_GET, "/api/v1/auth/me", api_auth_me, 0, NULL },
	{ HTTP_POST, "/api/v1/auth/api-keys", api_keys_create, 0, api_authorize_user },
	{ HTTP_GET, "/api/v1/auth/api-keys", api_keys_list, 0, NULL },
	{ HTTP_DELETE, "/api/v1/auth/api-keys/{key_id}", api_keys_delete, 0, NULL },
	{ HTTP_GET, "/api/v1/users/me/preferences", api_prefs_get, 0, NULL },
	{ HTTP_PUT, "/api/v1/users/me/preferences", api_prefs_put, 0, api_authorize_user },
	{ HTTP_PATCH, "/api/v1/users/me/preferences", api_prefs_patch, 0, api_authorize_user },

	{ HTTP_POST, "/api/v1/jobs", api_jobs_submit, 0, api_authorize_user },
	{ HTTP_GET, "/api/v1/jobs", api_jobs_list, 0, NULL },
	{ HTTP_GET, "/api/v1/jobs/{job_id}", api_jobs_get, 0, NULL },
	{ HTTP_POST, "/api/v1/jobs/{job_id}/cancel", api_jobs_cancel, 0, NULL },
	{ HTTP_GET, "/api/v1/jobs/{job_id}/events", api_jobs_events, 0, NULL },

	{ HTTP_GET, "/api/v1/books", api_books_list, 0, NULL },
	{ HTTP_POST, "/api/v1/books", api_books_create, 0, api_authorize_book_write },
	{ HTTP_POST, "/api/v1/books/import", api_books_import, ROUTE_UPLOAD, api_authorize_upload },
	{ HTTP_POST, "/api/v1/books/process", api_books_process, 0, api_authorize_book_write },
	{ HTTP_GET, "/api/v1/books/isbn/{isbn}", api_books_by_isbn, 0, NULL },
	{ HTTP_GET, "/api/v1/books/{book_id}", api_books_get, 0, NULL },
	{ HTTP_PATCH, "/api/v1/books/{book_id}", api_books_update, 0, api_authorize_book_write },
	{ HTTP_DELETE, "/api/v1/books/{book_id}", api_books_delete_all, 0, NULL },

	{ HTTP_POST, "/api/v1/books/{book_id}/reindex", api_books_reindex, 0, api_authorize_book_write },
	{ HTTP_GET, "/api/v1/search", api_search, 0, NULL },
	{ HTTP_POST, "/api/v1/chatbot/query", api_chat_query, 0, NULL },
	{ HTTP_POST, "/api/v1/chatbot/context", api_chat_context, 0, NULL },
	{ HTTP_GET, "/api/v1/chat/sessions", api_chat_sessions, 0, NULL },
	{ HTTP_GET, "/api/v1/chat/sessions/{session_id}", api_chat_session_get, 0, NULL },
	{ HTTP_DELETE, "/api/v1/chat/sessions/{session_id}", api_chat_session_delete, 0, NULL },
	{ HTTP_GET, "/api/v1/chat/sessions/{session_id}/messages", api_chat_messages, 0, NULL },

	/* The chat dialects of existing book sites (compat.c). */
	{ HTTP_POST, "/chat", api_compat_chat, 0, NULL },
	{ HTTP_POST, "/api/chat", api_compat_chat, 0, NULL },
	{ HTTP_POST, "/api/ask", api_compat_chat, 0, NULL },
	{ HTTP_POST, "/api/query", api_compat_chat, 0, NULL },
	{ HTTP_POST, "/chat/run", api_compat_chat, 0, NULL },
	{ HTTP_POST, "/api/ask-selection", api_compat_chat, 0, NULL },
	{ HTTP_POST, "/api/v1/chat", api_compat_v1_chat, 0, NULL },
	{ HTTP_POST, "/v1/chat/ask/stream", api_compat_ask_stream, 0, NULL },
	{ HTTP_POST, "/api/v1/sessions", api_compat_session_new, 0, NULL },
	{ HTTP_POST, "/api/v1/chat/session", api_compat_session_new, 0, NULL },
	{ HTTP_GET, "/api/v1/sessions/{session_id}", api_compat_history, 0, NULL },
	{ HTTP_GET, "/chat/history/{session_id}", api_compat_history, 0, NULL },
	{ HTTP_GET, "/api/history/{session_id}", api_compat_history, 0, NULL },
	{ HTTP_POST, "/api/feedback", api_compat_feedback, 0, NULL },
	{ HTTP_POST, "/api/translate", api_compat_translate, 0, NULL },
	{ HTTP_POST, "/api/personalize", api_compat_personalize, 0, NULL },
	{ HTTP_POST, "/api/content/personalize", api_compat_personalize, 0, NULL },
	/* A Docusaurus doc id has slashes: one route per depth. */
	{ HTTP_GET, "/api/content/chapters/{d1}", api_compat_content_chapter, 0, NULL },
	{ HTTP_GET, "/api/content/chapters/{d1}/{d2}", api_compat_content_chapter, 0, NULL },
	{ HTTP_GET, "/api/content/chapters/{d1}/{d2}/{d3}", api_compat_content_chapter, 0, NULL },
	{ HTTP_GET, "/api/content/chapters/{d1}/{d2}/{d3}/{d4}", api_compat_content_chapter, 0, NULL },
	{ HTTP_GET, "/api/v1/feedback", api_feedback_list, 0, NULL },

	{ HTTP_GET, "/api/v1/books/{book_id}/chapters", api_chapters_list, 0, NULL },
	{ HTTP_POST, "/api/v1/books/{book_id}/chapters", api_chapters_create, 0, api_authorize_book_write },
	{ HTTP_GET, "/api/v1/books/{book_id}/chapters/{chapter}", api_chapters_get, 0, NULL },
	{ HTTP_PUT, "/api/v1/books/{book_id}/chapters/{chapter}", api_chapters_replace, 0, api_authorize_book_write },
	{ HTTP_DELETE, "/api/v1/books/{book_id}/chapters/{chapter}", api_chapters_delete, 0, NULL },

	/* The BookBytes pipeline (audio.c). */
	{ HTTP_GET, "/api/v1/voices", api_voices, 0, NULL },
	{ HTTP_GET, "/api/v1/books/{book_id}/chapters/{chapter}/audio", api_chapter_audio, 0, NULL },
	{ HTTP_GET, "/api/v1/books/{book_id}/chapters/{chapter}/audio/timings", api_chapter_timings, 0, NULL },

	/* Chapters for each reader (reading.c). */
	{ HTTP_GET, "/api/v1/books/{book_id}/chapters/{chapter}/personalized", api_reading_personalized, 0, NULL },
	{ HTTP_GET, "/api/v1/books/{book_id}/chapters/{chapter}/translated/{language_code}", api_reading_translated, 0,
	  NULL },
	{ HTTP_PUT, "/api/v1/books/{book_id}/chapters/{chapter}/translations/{language_code}",
	  api_reading_put_translation, 0, api_authorize_book_write },
	{ HTTP_POST, "/api/v1/books/{book_id}/chapters/{chapter}/translations/{language_code}/sections/{anchor}/refresh",
	  api_reading_refresh, 0, api_authorize_book_write },
	{ HTTP_POST, "/api/v1/books/{book_id}/translations/{language_code}", api_reading_translate_book, 0,
	  api_authorize_book_write },
	{ HTTP_GET, "/api/v1/books/{book_id}/glossary", api_reading_glossary_get, 0, NULL },
	{ HTTP_PUT, "/api/v1/books/{book_id}/glossary", api_reading_glossary_put, 0, api_authorize_book_write },
};

const size_t api_nroutes = ARRAY_LEN(api_routes);
