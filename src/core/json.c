#include "json.h"

#include <string.h>

#include "utf8.h"

int jis_null(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return v && json_is_null(v);
}

int jget_str(json_t *o, const char *key, int required, size_t minlen, size_t maxlen,
	     const char **out, struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (required) {
			err_field(e, key, "is required");
			return -1;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		err_field(e, key, "must be a string");
		return -1;
	}
	size_t n = json_string_length(v);
	/* Lengths are in characters (code points): jansson has checked the UTF-8. */
	size_t chars = 0;
	const unsigned char *s = (const unsigned char *)json_string_value(v);
	for (size_t i = 0; i < n; i++)
		chars += (s[i] & 0xc0) != 0x80;
	if (chars < minlen || chars > maxlen) {
		if (minlen > 0 && chars < minlen)
			err_field(e, key, "must not be empty");
		else
			err_field(e, key, "must be at most %zu characters", maxlen);
		return -1;
	}
	if (memchr(s, '\0', n)) {
		err_field(e, key, "must not contain NUL characters");
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

int jget_int(json_t *o, const char *key, int required, long long min, long long max,
	     long long *out, struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (required) {
			err_field(e, key, "is required");
			return -1;
		}
		return 0;
	}
	if (!json_is_integer(v)) {
		err_field(e, key, "must be an integer");
		return -1;
	}
	long long n = json_integer_value(v);
	if (n < min || n > max) {
		err_field(e, key, "must be between %lld and %lld", min, max);
		return -1;
	}
	*out = n;
	return 1;
}

int jget_bool(json_t *o, const char *key, int required, int *out, struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (required) {
			err_field(e, key, "is required");
			return -1;
		}
		return 0;
	}
	if (!json_is_boolean(v)) {
		err_field(e, key, "must be true or false");
		return -1;
	}
	*out = json_is_true(v);
	return 1;
}

json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The top-level field of a JSON object text whose value holds byte `off`
 * (its name in out, "" when the byte is elsewhere): a best effort that lets a
 * client be told which field to fix. Escapes in a name are left as written. */
static void field_at(const char *s, size_t n, size_t off, char *out, size_t cap)
{
	int depth = 0, in_str = 0;
	size_t str_start = 0, str_end = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && i < off; i++) {
		char ch = s[i];
		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = 0, str_end = i;
			continue;
		}
		if (ch == '"') {
			in_str = 1;
			str_start = i + 1;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			depth--;
		} else if (ch == ':' && depth == 1) {
			size_t k = utf8_prefix(s + str_start, str_end - str_start, cap - 1);
			memcpy(out, s + str_start, k);
			out[k] = '\0';
		} else if (ch == ',' && depth == 1) {
			out[0] = '\0';
		}
	}
}

int json_parse_object(const char *body, size_t len, json_t **out, struct err *e)
{
	json_error_t je;
	*out = NULL;
	size_t bad = utf8_first_invalid(body, len);
	if (bad < len) {
		char field[64];
		field_at(body, len, bad, field, sizeof(field));
		if (!field[0])
			return err_set(e, ERR_BAD_REQUEST, "request body is not valid UTF-8");
		err_bad_field(e, field, "is not valid UTF-8");
		return ERR_BAD_REQUEST;
	}
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!v)
		return err_set(e, ERR_BAD_REQUEST, "malformed JSON at line %d, column %d: %s",
			       je.line, je.column, je.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return err_set(e, ERR_INVALID, "request body must be a JSON object");
	}
	*out = v;
	return 0;
}
