#include "vindex.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../core/mem.h"

struct vindex {
	pthread_rwlock_t lock;
	int dim;
	size_t n, cap;
	char (*ids)[UUID_STR_LEN];
	char (*books)[UUID_STR_LEN];
	char (*chapters)[UUID_STR_LEN];
	int8_t *q;	/* n * dim */
	float *qscale;	/* per vector: float value of one int8 step */
	float *f;	/* n * dim, normalised */
	/* chunk id -> slot, open addressing */
	size_t hcap;
	int64_t *slots; /* -1 = empty */
};

#define hash_id hash_fnv1a

struct vindex *vindex_new(int dim)
{
	struct vindex *v = xcalloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->dim = dim;
	pthread_rwlock_init(&v->lock, NULL);
	return v;
}

void vindex_free(struct vindex *v)
{
	if (!v)
		return;
	pthread_rwlock_destroy(&v->lock);
	xfree(v->ids);
	xfree(v->books);
	xfree(v->chapters);
	xfree(v->q);
	xfree(v->qscale);
	xfree(v->f);
	xfree(v->slots);
	xfree(v);
}

int vindex_dim(const struct vindex *v) { return v->dim; }

size_t vindex_count(struct vindex *v)
{
	pthread_rwlock_rdlock(&v->lock);
	size_t n = v->n;
	pthread_rwlock_unlock(&v->lock);
	return n;
}

static int64_t *slot_for(struct vindex *v, const char *id)
{
	size_t i = hash_id(id) & (v->hcap - 1);
	while (v->slots[i] >= 0 && strcmp(v->ids[v->slots[i]], id) != 0)
		i = (i + 1) & (v->hcap - 1);
	return &v->slots[i];
}

static int rehash(struct vindex *v, size_t hcap)
{
	int64_t *s = xmalloc(sizeof(*s) * hcap);
	if (!s)
		return -1;
	for (size_t i = 0; i < hcap; i++)
		s[i] = -1;
	xfree(v->slots);
	v->slots = s;
	v->hcap = hcap;
	for (size_t k = 0; k < v->n; k++)
		*slot_for(v, v->ids[k]) = (int64_t)k;
	return 0;
}

static int grow(struct vindex *v)
{
	size_t cap = v->cap ? v->cap * 2 : 1024, d = (size_t)v->dim;
#define GROW(field, size)                                          \
	do {                                                       \
		void *p = xrealloc(v->field, (size) * cap);        \
		if (!p)                                            \
			return -1;                                 \
		v->field = p;                                      \
	} while (0)
	GROW(ids, UUID_STR_LEN);
	GROW(books, UUID_STR_LEN);
	GROW(chapters, UUID_STR_LEN);
	GROW(q, d);
	GROW(qscale, sizeof(float));
	GROW(f, sizeof(float) * d);
#undef GROW
	v->cap = cap;
	return rehash(v, cap * 2);
}

static void store(struct vindex *v, size_t slot, const float *vec)
{
	size_t d = (size_t)v->dim;
	float *f = v->f + slot * d;
	double norm = 0;
	for (size_t i = 0; i < d; i++)
		norm += (double)vec[i] * vec[i];
	norm = norm > 0 ? sqrt(norm) : 1;
	float maxabs = 0;
	for (size_t i = 0; i < d; i++) {
		f[i] = (float)(vec[i] / norm);
		maxabs = fmaxf(maxabs, fabsf(f[i]));
	}
	float scale = maxabs > 0 ? maxabs / 127.0f : 1.0f;
	int8_t *q = v->q + slot * d;
	for (size_t i = 0; i < d; i++)
		q[i] = (int8_t)lrintf(f[i] / scale);
	v->qscale[slot] = scale;
}

int vindex_upsert(struct vindex *v, const char *chunk_id, const char *book_id, const char *chapter_id,
		  const float *vec)
{
	pthread_rwlock_wrlock(&v->lock);
	int rc = 0;
	if (!v->hcap && rehash(v, 2048)) {
		rc = -1;
		goto out;
	}
	int64_t *s = slot_for(v, chunk_id);
	size_t slot;
	if (*s >= 0) {
		slot = (size_t)*s;
	} else {
		if (v->n == v->cap && grow(v)) {
			rc = -1;
			goto out;
		}
		slot = v->n++;
		memcpy(v->ids[slot], chunk_id, UUID_STR_LEN - 1);
		v->ids[slot][UUID_STR_LEN - 1] = '\0';
		*slot_for(v, chunk_id) = (int64_t)slot;
	}
	memcpy(v->books[slot], book_id, UUID_STR_LEN - 1);
	v->books[slot][UUID_STR_LEN - 1] = '\0';
	memcpy(v->chapters[slot], chapter_id, UUID_STR_LEN - 1);
	v->chapters[slot][UUID_STR_LEN - 1] = '\0';
	store(v, slot, vec);
out:
	pthread_rwlock_unlock(&v->lock);
	return rc;
}

/* A small max-heap-free top-k: keep the k best in a sorted array (k is small). */
struct top {
	int k, n;
	int64_t *slot;
	float *score;
};

static void top_push(struct top *t, int64_t slot, float score)
{
	if (t->n == t->k && score <= t->score[t->n - 1])
		return;
	int i = t->n < t->k ? t->n++ : t->n - 1;
	while (i > 0 && t->score[i - 1] < score) {
		t->score[i] = t->score[i - 1];
		t->slot[i] = t->slot[i - 1];
		i--;
	}
	t->score[i] = score;
	t->slot[i] = slot;
}

/*
 * The int8 pass is the whole cost of a search, so it gets a kernel of its own.
 * With AVX2, vpmaddubsw multiplies unsigned by signed bytes; the query's
 * absolute values are the unsigned side and each vector byte takes the sign of
 * its query byte (vpsignb), so a*b = |a| * (sign(a) * b). Values are quantised
 * to [-127, 127], so a pair of products is at most 2 * 127 * 127 = 32258 and the
 * int16 sums never saturate; vpmaddwd then widens them to int32.
 */
#if defined(__AVX2__)
#include <immintrin.h>

static int32_t dot_i8(const int8_t *absq, const int8_t *q, const int8_t *v, size_t d)
{
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i acc = _mm256_setzero_si256();
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(absq + i));
		__m256i s = _mm256_loadu_si256((const __m256i *)(q + i));
		__m256i b = _mm256_loadu_si256((const __m256i *)(v + i));
		__m256i p = _mm256_maddubs_epi16(a, _mm256_sign_epi8(b, s));
		acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
	}
	__m128i r = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
	r = _mm_hadd_epi32(r, r);
	r = _mm_hadd_epi32(r, r);
	int32_t sum = _mm_cvtsi128_si32(r);
	for (; i < d; i++)
		sum += (int32_t)q[i] * (int32_t)v[i];
	return sum;
}
#else
static int32_t dot_i8(const int8_t *absq, const int8_t *q, const int8_t *v, size_t d)
{
	(void)absq;
	int32_t s = 0;
	for (size_t i = 0; i < d; i++) /* vectorised by the compiler (-O3 on this file) */
		s += (int32_t)q[i] * (int32_t)v[i];
	return s;
}
#endif

static float dot_f32(const float *a, const float *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++)
		s += a[i] * b[i];
	return s;
}

int vindex_search(struct vindex *v, const float *query, int k, const char *book_id, const char *chapter_id,
		  struct vhit *out)
{
	if (k <= 0)
		return 0;
	size_t d = (size_t)v->dim;
	float *qf = xmalloc(sizeof(float) * d);
	int8_t *qq = xmalloc(d), *qa = xmalloc(d);
	int cand = k * 4;
	int64_t *cs = xmalloc(sizeof(int64_t) * (size_t)cand);
	float *cv = xmalloc(sizeof(float) * (size_t)cand);
	int64_t *fs = xmalloc(sizeof(int64_t) * (size_t)k);
	float *fv = xmalloc(sizeof(float) * (size_t)k);
	int found = 0;
	if (!qf || !qq || !qa || !cs || !cv || !fs || !fv)
		goto out;
	double norm = 0;
	for (size_t i = 0; i < d; i++)
		norm += (double)query[i] * query[i];
	norm = norm > 0 ? sqrt(norm) : 1;
	float maxabs = 0;
	for (size_t i = 0; i < d; i++) {
		qf[i] = (float)(query[i] / norm);
		maxabs = fmaxf(maxabs, fabsf(qf[i]));
	}
	float qscale = maxabs > 0 ? maxabs / 127.0f : 1.0f;
	for (size_t i = 0; i < d; i++) {
		qq[i] = (int8_t)lrintf(qf[i] / qscale);
		qa[i] = (int8_t)abs(qq[i]);
	}

	pthread_rwlock_rdlock(&v->lock);
	struct top t = { cand, 0, cs, cv };
	for (size_t s = 0; s < v->n; s++) {
		if (book_id && strcmp(v->books[s], book_id) != 0)
			continue;
		if (chapter_id && strcmp(v->chapters[s], chapter_id) != 0)
			continue;
		float approx = (float)dot_i8(qa, qq, v->q + s * d, d) * v->qscale[s] * qscale;
		top_push(&t, (int64_t)s, approx);
	}
	/* Rescore the candidates exactly. */
	struct top f = { k, 0, fs, fv };
	for (int i = 0; i < t.n; i++)
		top_push(&f, t.slot[i], dot_f32(v->f + (size_t)t.slot[i] * d, qf, d));
	for (int i = 0; i < f.n; i++) {
		memcpy(out[i].chunk_id, v->ids[f.slot[i]], UUID_STR_LEN);
		out[i].score = f.score[i];
	}
	found = f.n;
	pthread_rwlock_unlock(&v->lock);
out:
	xfree(qf);
	xfree(qq);
	xfree(qa);
	xfree(cs);
	xfree(cv);
	xfree(fs);
	xfree(fv);
	return found;
}
