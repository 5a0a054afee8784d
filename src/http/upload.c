/*
 * Uploads: a ROUTE_UPLOAD body is streamed to a temporary file, either whole
 * or, for multipart/form-data, its first file part (plus a few small text
 * fields). A failure while reading is recorded (srv_fail) and answered once
 * the body is in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/utf8.h"
#include "server_int.h"

const struct http_upload *http_upload(http_req *r)
{
	return r->has_upload ? &r->upload : NULL;
}

const char *http_form(http_req *r, const char *name)
{
	for (int i = 0; i < r->nform; i++)
		if (strcmp(r->form_keys[i], name) == 0)
			return r->form_vals[i];
	return NULL;
}

int http_upload_keep(http_req *r, const char *path)
{
	if (!r->has_upload || rename(r->upload_path, path))
		return -1;
	r->upload_kept = 1;
	return 0;
}

/* ---- uploads ----------------------------------------------------------------- */

/* Fails the request once its body has been read (the first failure stands). */
void srv_fail(http_req *r, int status, const char *code, const char *msg, const char *field)
{
	if (r->fail_status)
		return;
	r->fail_status = status;
	r->fail_code = code;
	r->fail_msg = msg;
	r->fail_field = field;
}

int srv_upload_write(http_req *r, const char *data, size_t n)
{
	if (r->upload.size + n > r->upload_max) {
		srv_fail(r, 413, "payload_too_large", NULL, NULL);
		return -1;
	}
	while (n) {
		ssize_t w = write(r->upload_fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("request %s: cannot write the upload: %s", r->request_id, strerror(errno));
			srv_fail(r, 500, "internal", "cannot store the upload", NULL);
			return -1;
		}
		data += w;
		n -= (size_t)w;
		r->upload.size += (size_t)w;
	}
	return 0;
}

static enum MHD_Result on_form_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
				    const char *ctype, const char *te, const char *data, uint64_t off, size_t size)
{
	http_req *r = cls;
	(void)kind;
	(void)te;
	if (!key || !utf8_valid(key, strlen(key))) {
		srv_fail(r, 400, "bad_request", "a form field name is not valid UTF-8", "form");
		return MHD_NO;
	}
	if (filename) {
		/* The first file part is the upload; later ones are ignored. */
		if (!r->upload.filename) {
			if (!utf8_valid(filename, strlen(filename))) {
				srv_fail(r, 400, "bad_request", "filename is not valid UTF-8", "filename");
				return MHD_NO;
			}
			r->upload.filename = arena_strdup(&r->arena, filename);
			r->upload.content_type = ctype ? arena_strdup(&r->arena, ctype) : NULL;
			if (!r->upload.filename) {
				srv_fail(r, 500, "internal", "out of memory", NULL);
				return MHD_NO;
			}
		} else if (strcmp(r->upload.filename, filename) != 0) {
			return MHD_YES;
		}
		return srv_upload_write(r, data, size) ? MHD_NO : MHD_YES;
	}
	/* A small text field: at most MAX_FORM_FIELDS, up to 1 KiB each. */
	int i = 0;
	while (i < r->nform && strcmp(r->form_keys[i], key) != 0)
		i++;
	if (i == r->nform) {
		if (r->nform >= MAX_FORM_FIELDS) {
			srv_fail(r, 422, "validation_failed", "the form has more than 8 text fields", "form");
			return MHD_NO;
		}
		r->form_keys[i] = arena_strdup(&r->arena, key);
		r->form_vals[i] = arena_strdup(&r->arena, "");
		if (!r->form_keys[i] || !r->form_vals[i]) {
			srv_fail(r, 500, "internal", "out of memory", NULL);
			return MHD_NO;
		}
		r->nform++;
	}
	size_t have = strlen(r->form_vals[i]);
	if (off != have) {
		srv_fail(r, 422, "validation_failed", arena_printf(&r->arena, "form field %s is given more than once", r->form_keys[i]),
		     r->form_keys[i]);
		return MHD_NO;
	}
	if (have + size > MAX_FORM_VALUE) {
		srv_fail(r, 422, "validation_failed",
		     arena_printf(&r->arena, "form field %s is longer than %d bytes", r->form_keys[i], MAX_FORM_VALUE),
		     r->form_keys[i]);
		return MHD_NO;
	}
	char *v = arena_alloc(&r->arena, have + size + 1);
	if (!v) {
		srv_fail(r, 500, "internal", "out of memory", NULL);
		return MHD_NO;
	}
	memcpy(v, r->form_vals[i], have);
	memcpy(v + have, data, size);
	v[have + size] = '\0';
	r->form_vals[i] = v;
	return MHD_YES;
}

/* After the body: every text field must be UTF-8 (a value comes in pieces
 * that may split a character, so it is checked whole). */
void srv_check_form(http_req *r)
{
	for (int i = 0; i < r->nform && !r->fail_status; i++)
		if (!utf8_valid(r->form_vals[i], strlen(r->form_vals[i])))
			srv_fail(r, 400, "bad_request", arena_printf(&r->arena, "form field %s is not valid UTF-8", r->form_keys[i]),
			     r->form_keys[i]);
}

int srv_upload_begin(http_req *r)
{
	struct http_server *s = r->srv;
	r->upload_max = s->o.max_upload;
	r->upload_path = arena_printf(&r->arena, "%s/upload-XXXXXX", s->o.upload_dir);
	if (!r->upload_path || (r->upload_fd = mkstemp(r->upload_path)) < 0) {
		r->upload_path = NULL;
		r->upload_fd = -1;
		log_error("cannot create an upload file in %s: %s", s->o.upload_dir, strerror(errno));
		srv_reject(r, 500, "internal", "cannot store the upload", NULL);
		return -1;
	}
	const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		r->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_form_part, r);
		if (!r->pp) {
			srv_reject(r, 400, "bad_request", "malformed multipart/form-data", NULL);
			return -1;
		}
	} else {
		r->upload.content_type = ct ? arena_strdup(&r->arena, ct) : NULL;
		const char *fn = http_header(r, "X-Filename");
		if (!fn)
			fn = http_query(r, "filename");
		r->upload.filename = fn ? arena_strdup(&r->arena, fn) : NULL;
	}
	r->upload.path = r->upload_path;
	return 0;
}
