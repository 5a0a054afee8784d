/* The in-memory vector index: its int8 first pass + float rescoring must
 * return what a plain float32 cosine scan returns. */
#include "unit.h"

#include <math.h>

#include "services/vindex.h"

static uint64_t rng_state;

static double rnd(void) /* uniform in [-1, 1) */
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static void make_id(char *out, const char *prefix, int i)
{
	snprintf(out, UUID_STR_LEN, "%s-%08d-0000-0000-000000000000", prefix, i);
}

static double cosine(const float *a, const float *b, int d)
{
	double ab = 0, aa = 0, bb = 0;
	for (int i = 0; i < d; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return ab / (sqrt(aa) * sqrt(bb));
}

/* n random vectors of dimension d; each query's top k must be the exact
 * cosine top k (ids and order), with the exact scores. Odd dimensions cover
 * the SIMD kernel's tail. */
static void check_exact(int d, int n, int k)
{
	rng_state = 0x5eed0000u + (uint64_t)d;
	struct vindex *v = vindex_new(d);
	assert_non_null(v);
	float *vecs = malloc(sizeof(float) * (size_t)n * (size_t)d);
	assert_non_null(vecs);
	char id[UUID_STR_LEN];
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < d; j++)
			vecs[(size_t)i * d + j] = (float)rnd() * (j % 7 == 0 ? 3.0f : 1.0f);
		make_id(id, "c", i);
		assert_int_equal(vindex_upsert(v, id, id, id, vecs + (size_t)i * d), 0);
	}
	assert_int_equal(vindex_count(v), (size_t)n);

	float *q = malloc(sizeof(float) * (size_t)d);
	double *score = malloc(sizeof(double) * (size_t)n);
	struct vhit *hits = calloc((size_t)k, sizeof(*hits));
	assert_true(q && score && hits);
	for (int t = 0; t < 20; t++) {
		for (int j = 0; j < d; j++)
			q[j] = (float)rnd();
		for (int i = 0; i < n; i++)
			score[i] = cosine(q, vecs + (size_t)i * d, d);
		int got = vindex_search(v, q, k, NULL, NULL, hits);
		assert_int_equal(got, k < n ? k : n);
		for (int r = 0; r < got; r++) {
			int i = atoi(hits[r].chunk_id + 2);
			assert_float_equal(hits[r].score, score[i], 1e-4);
			if (r > 0)
				assert_true(hits[r].score <= hits[r - 1].score);
			/* nothing outside the answer scores higher than the answer's last */
			int better = 0;
			for (int o = 0; o < n; o++)
				better += score[o] > score[i] + 1e-6;
			assert_true(better <= r);
		}
	}
	free(hits);
	free(score);
	free(q);
	free(vecs);
	vindex_free(v);
}

static void test_exact_small_dims(void **state)
{
	(void)state;
	check_exact(1, 50, 5);
	check_exact(3, 200, 10);
	check_exact(31, 300, 10);
}

static void test_exact_simd_widths(void **state)
{
	(void)state;
	check_exact(32, 300, 10);
	check_exact(33, 300, 10);
	check_exact(95, 300, 7);
	check_exact(768, 400, 10);
}

static void test_k_larger_than_index(void **state)
{
	(void)state;
	check_exact(16, 4, 10);
}

/* Components at the ends of the int8 range (+-127 after scaling) on both
 * sides must not saturate the kernel: a vector equal to the query scores 1. */
static void test_extreme_components(void **state)
{
	(void)state;
	enum { D = 64 };
	struct vindex *v = vindex_new(D);
	float a[D], b[D];
	for (int j = 0; j < D; j++) {
		a[j] = j % 2 ? -1.0f : 1.0f;
		b[j] = -a[j];
	}
	char same[UUID_STR_LEN], oppo[UUID_STR_LEN], book[UUID_STR_LEN];
	make_id(same, "s", 0);
	make_id(oppo, "o", 0);
	make_id(book, "b", 0);
	assert_int_equal(vindex_upsert(v, same, book, book, a), 0);
	assert_int_equal(vindex_upsert(v, oppo, book, book, b), 0);
	struct vhit hits[2];
	assert_int_equal(vindex_search(v, a, 2, NULL, NULL, hits), 2);
	assert_string_equal(hits[0].chunk_id, same);
	assert_float_equal(hits[0].score, 1.0, 1e-5);
	assert_string_equal(hits[1].chunk_id, oppo);
	assert_float_equal(hits[1].score, -1.0, 1e-5);
	vindex_free(v);
}

static void test_filters_and_replace(void **state)
{
	(void)state;
	enum { D = 40, N = 90 };
	struct vindex *v = vindex_new(D);
	char id[UUID_STR_LEN], book[UUID_STR_LEN], chap[UUID_STR_LEN];
	float vec[D];
	rng_state = 7;
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < D; j++)
			vec[j] = (float)rnd();
		make_id(id, "c", i);
		make_id(book, "b", i % 3);
		make_id(chap, "h", i % 9);
		assert_int_equal(vindex_upsert(v, id, book, chap, vec), 0);
	}
	struct vhit hits[N];
	make_id(book, "b", 1);
	assert_int_equal(vindex_search(v, vec, N, book, NULL, hits), N / 3);
	for (int r = 0; r < N / 3; r++)
		assert_int_equal(atoi(hits[r].chunk_id + 2) % 3, 1);
	make_id(chap, "h", 4);
	assert_int_equal(vindex_search(v, vec, N, book, chap, hits), N / 9);
	for (int r = 0; r < N / 9; r++)
		assert_int_equal(atoi(hits[r].chunk_id + 2) % 9, 4);

	/* replacing a vector keeps one entry and moves it, book and chapter included */
	make_id(id, "c", 0);
	make_id(book, "b", 2);
	assert_int_equal(vindex_upsert(v, id, book, chap, vec), 0);
	assert_int_equal(vindex_count(v), (size_t)N);
	assert_int_equal(vindex_search(v, vec, 1, book, NULL, hits), 1);
	assert_string_equal(hits[0].chunk_id, id);
	assert_float_equal(hits[0].score, 1.0, 1e-5);
	vindex_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_small_dims),
		cmocka_unit_test(test_exact_simd_widths),
		cmocka_unit_test(test_k_larger_than_index),
		cmocka_unit_test(test_extreme_components),
		cmocka_unit_test(test_filters_and_replace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
