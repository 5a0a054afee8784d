/*
 * The vector scan of bookd's in-memory index (src/services/vindex.c), alone:
 * fills a vindex with N random D-dimensional vectors (seeded PRNG, so every
 * run builds the same index), then measures
 *   - single-query latency over Q queries, top 10 (bookd's default limit)
 *     and top 30 (what hybrid search asks of the vector side), and top 10
 *     filtered to one book (the filter is applied during the scan);
 *   - how often the int8 first pass + float rescoring returns the exact
 *     top 10 of a plain float32 scan (on 20 queries);
 *   - queries per second with T threads searching concurrently for S seconds
 *     (readers share the index's rwlock).
 *
 * The vectors are random points around 1,000 random centres, and each query
 * is a noisy copy of one centre, so that queries have real neighbours (with
 * uniform noise alone every cosine is ~0 and "top 10" is arbitrary). The scan
 * reads every vector whatever the data, so latency does not depend on it.
 *
 * Build and run (bench/search.sh does this):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc bench/vindex_bench.c \
 *      build/obj/services/vindex.o build/obj/core/mem.o -lpthread -lm -o vindex_bench
 *   ./vindex_bench [N [D [Q [T [S]]]]]     (default 100000 768 200 8 2)
 * Human-readable lines go to stderr, one JSON object to stdout.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "services/vindex.h"

#define CENTRES 1000
#define BOOKS 16
#define SEED 0x5eedb00cULL

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static float urand(uint64_t *s) /* uniform in [-1, 1) */
{
	return (float)((double)(splitmix(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

static int dim;
static float *centres;

/* Vector i, regenerated identically whenever it is needed. */
static void make_vector(size_t i, float *v)
{
	uint64_t s = SEED ^ (0xa0761d6478bd642fULL * (i + 1));
	const float *c = centres + (i % CENTRES) * (size_t)dim;
	for (int k = 0; k < dim; k++)
		v[k] = c[k] + 0.6f * urand(&s);
}

static void make_query(int q, float *v)
{
	uint64_t s = SEED ^ (0xe7037ed1a0b428dbULL * (uint64_t)(q + 1));
	const float *c = centres + (splitmix(&s) % CENTRES) * (size_t)dim;
	for (int k = 0; k < dim; k++)
		v[k] = c[k] + 0.6f * urand(&s);
}

static void fmt_id(char *out, const char *kind, size_t i)
{
	/* uuid-shaped, 36 characters */
	snprintf(out, UUID_STR_LEN, "%08x-0000-7000-8000-%.1s%011llx", (unsigned)(i & 0xffffffffu), kind,
		 (unsigned long long)(i * 2654435761u % 0xffffffffu));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Wall-clock latency, and the CPU time the query took (the same unless the
 * machine's cores are shared with other work). */
struct lat {
	double p50, p99, mean, max, cpu_p50, cpu_p99;
};

static struct lat latency(struct vindex *vi, float *qs, int nq, int k, const char *book)
{
	double *t = malloc(sizeof(double) * (size_t)nq), *c = malloc(sizeof(double) * (size_t)nq);
	struct vhit *hits = malloc(sizeof(*hits) * (size_t)k);
	struct lat l = { 0 };
	for (int i = 0; i < nq; i++) {
		double t0 = now_s(), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
		int n = vindex_search(vi, qs + (size_t)i * (size_t)dim, k, book, NULL, hits);
		c[i] = (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1000.0;
		t[i] = (now_s() - t0) * 1000.0;
		if (n != k) {
			fprintf(stderr, "vindex_bench: query %d returned %d hits, expected %d\n", i, n, k);
			exit(1);
		}
		l.mean += t[i] / nq;
	}
	qsort(t, (size_t)nq, sizeof(double), cmp_double);
	l.p50 = t[(nq + 1) / 2 - 1];
	l.p99 = t[(int)ceil(0.99 * nq) - 1];
	l.max = t[nq - 1];
	qsort(c, (size_t)nq, sizeof(double), cmp_double);
	l.cpu_p50 = c[(nq + 1) / 2 - 1];
	l.cpu_p99 = c[(int)ceil(0.99 * nq) - 1];
	free(t);
	free(c);
	free(hits);
	return l;
}

struct worker {
	struct vindex *vi;
	const float *qs;
	int nq, id;
	atomic_int *stop;
	long done;
};

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	struct vhit hits[10];
	for (int i = w->id; !atomic_load(w->stop); i++) {
		vindex_search(w->vi, w->qs + (size_t)(i % w->nq) * (size_t)dim, 10, NULL, NULL, hits);
		w->done++;
	}
	return NULL;
}

static void normalise(float *v)
{
	double n = 0;
	for (int k = 0; k < dim; k++)
		n += (double)v[k] * v[k];
	n = n > 0 ? sqrt(n) : 1;
	for (int k = 0; k < dim; k++)
		v[k] = (float)(v[k] / n);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	dim = argc > 2 ? atoi(argv[2]) : 768;
	int nq = argc > 3 ? atoi(argv[3]) : 200;
	int threads = argc > 4 ? atoi(argv[4]) : 8;
	double secs = argc > 5 ? atof(argv[5]) : 2.0;
	if (n < 100 || dim < 8 || nq < 20 || threads < 1 || threads > 64 || secs <= 0) {
		fprintf(stderr, "usage: vindex_bench [N>=100 [D>=8 [Q>=20 [T 1..64 [S>0]]]]]\n");
		return 2;
	}
	uint64_t s = SEED;
	centres = malloc(sizeof(float) * CENTRES * (size_t)dim);
	float *v = malloc(sizeof(float) * (size_t)dim);
	float *qs = malloc(sizeof(float) * (size_t)nq * (size_t)dim);
	struct vindex *vi = vindex_new(dim);
	if (!centres || !v || !qs || !vi) {
		fprintf(stderr, "vindex_bench: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < (size_t)CENTRES * (size_t)dim; i++)
		centres[i] = urand(&s);

	double t0 = now_s();
	char id[UUID_STR_LEN], book[UUID_STR_LEN], chapter[UUID_STR_LEN];
	for (long i = 0; i < n; i++) {
		make_vector((size_t)i, v);
		fmt_id(id, "c", (size_t)i);
		fmt_id(book, "b", (size_t)(i % BOOKS));
		fmt_id(chapter, "h", (size_t)(i % 2000));
		if (vindex_upsert(vi, id, book, chapter, v)) {
			fprintf(stderr, "vindex_bench: out of memory at vector %ld\n", i);
			return 1;
		}
	}
	double fill_s = now_s() - t0;
	if ((long)vindex_count(vi) != n) {
		fprintf(stderr, "vindex_bench: index holds %zu vectors, expected %ld\n", vindex_count(vi), n);
		return 1;
	}
	for (int q = 0; q < nq; q++)
		make_query(q, qs + (size_t)q * (size_t)dim);
	double mib = (double)n * ((double)dim * 5 + 3 * UUID_STR_LEN + 4 + 16) / (1024.0 * 1024.0);
	fprintf(stderr, "vindex: %ld vectors x %d dims filled in %.2f s (~%.0f MiB: int8 + float32 + ids)\n", n, dim,
		fill_s, mib);

	/* Warm-up: caches, page faults, the first allocations. */
	struct vhit warm[10];
	for (int q = 0; q < 5; q++)
		vindex_search(vi, qs + (size_t)q * (size_t)dim, 10, NULL, NULL, warm);

	struct lat l10 = latency(vi, qs, nq, 10, NULL);
	struct lat l30 = latency(vi, qs, nq, 30, NULL);
	fmt_id(book, "b", 3);
	struct lat lbook = latency(vi, qs, nq, 10, book);
	fprintf(stderr, "single query (%d queries)        wall p50    p99   mean    max | cpu p50    p99  (ms)\n", nq);
	const struct lat *ls[] = { &l10, &l30, &lbook };
	const char *names[] = { "top 10", "top 30", "top 10, one book (1/16)" };
	for (int i = 0; i < 3; i++)
		fprintf(stderr, "  %-30s %6.2f %6.2f %6.2f %6.2f |   %6.2f %6.2f\n", names[i], ls[i]->p50, ls[i]->p99,
			ls[i]->mean, ls[i]->max, ls[i]->cpu_p50, ls[i]->cpu_p99);

	/* The floor: reading as many bytes as the int8 pass does (N * D), with
	 * nothing computed on them, single-threaded; the median of 11 reads. */
	size_t nb = (size_t)n * (size_t)dim;
	uint64_t *mem = malloc(nb + 8);
	double floor_ms = 0;
	if (mem) {
		memset(mem, 1, nb + 8);
		double r[11];
		volatile uint64_t sink = 0;
		for (int rep = 0; rep < 11; rep++) {
			double c0 = now_s();
			uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
			for (size_t i = 0; i + 4 <= nb / 8; i += 4) {
				a0 ^= mem[i];
				a1 ^= mem[i + 1];
				a2 ^= mem[i + 2];
				a3 ^= mem[i + 3];
			}
			sink ^= a0 ^ a1 ^ a2 ^ a3;
			r[rep] = (now_s() - c0) * 1000.0;
		}
		(void)sink;
		qsort(r, 11, sizeof(double), cmp_double);
		floor_ms = r[5];
		free(mem);
	}
	fprintf(stderr, "memory floor: reading %.1f MB takes %.2f ms (%.1f GB/s); the int8 pass reads that much per query\n",
		(double)nb / 1e6, floor_ms, floor_ms > 0 ? (double)nb / 1e6 / floor_ms : 0);

	/* Exactness: the int8 pass + float rescoring vs a float32 scan of every
	 * vector (regenerated), on 20 queries. */
	enum { EQ = 20, K = 10 };
	float *qnorm = malloc(sizeof(float) * EQ * (size_t)dim);
	long(*best)[K] = malloc(sizeof(*best) * EQ);
	float(*bests)[K] = malloc(sizeof(*bests) * EQ);
	for (int q = 0; q < EQ; q++) {
		memcpy(qnorm + (size_t)q * (size_t)dim, qs + (size_t)q * (size_t)dim, sizeof(float) * (size_t)dim);
		normalise(qnorm + (size_t)q * (size_t)dim);
		for (int j = 0; j < K; j++) {
			best[q][j] = -1;
			bests[q][j] = -2;
		}
	}
	for (long i = 0; i < n; i++) {
		make_vector((size_t)i, v);
		normalise(v);
		for (int q = 0; q < EQ; q++) {
			const float *qq = qnorm + (size_t)q * (size_t)dim;
			float d = 0;
			for (int k = 0; k < dim; k++)
				d += v[k] * qq[k];
			if (d <= bests[q][K - 1])
				continue;
			int j = K - 1;
			while (j > 0 && bests[q][j - 1] < d) {
				bests[q][j] = bests[q][j - 1];
				best[q][j] = best[q][j - 1];
				j--;
			}
			bests[q][j] = d;
			best[q][j] = i;
		}
	}
	int same = 0, top1 = 0;
	struct vhit hits[K];
	for (int q = 0; q < EQ; q++) {
		vindex_search(vi, qs + (size_t)q * (size_t)dim, K, NULL, NULL, hits);
		for (int j = 0; j < K; j++) {
			fmt_id(id, "c", (size_t)best[q][j]);
			for (int h = 0; h < K; h++)
				if (!strcmp(hits[h].chunk_id, id)) {
					same++;
					top1 += j == 0 && h == 0;
					break;
				}
		}
	}
	double recall = (double)same / (EQ * K);
	fprintf(stderr, "agreement with an exact float32 scan: recall@10 %.3f, same top 1: %d/%d\n", recall, top1, EQ);

	/* Throughput: T threads searching concurrently. */
	atomic_int stop = 0;
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	t0 = now_s();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ vi, qs, nq, i * 7, &stop, 0 };
		pthread_create(&tid[i], NULL, run_worker, &w[i]);
	}
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	long total = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		total += w[i].done;
	}
	double elapsed = now_s() - t0;
	double qps = (double)total / elapsed;
	fprintf(stderr, "throughput, %d threads: %.0f queries/s (%ld queries in %.2f s)\n", threads, qps, total, elapsed);

	printf("{\"vectors\": %ld, \"dim\": %d, \"queries\": %d, \"fill_s\": %.3f, \"approx_mib\": %.0f, "
	       "\"exact_recall_at_10\": %.3f, \"exact_top1\": %d, \"exact_queries\": %d, "
	       "\"threads\": %d, \"seconds\": %.2f, \"qps\": %.1f, \"read_floor_ms\": %.3f, \"scanned_mb\": %.1f",
	       n, dim, nq, fill_s, mib, recall, top1, EQ, threads, elapsed, qps, floor_ms, (double)nb / 1e6);
	const char *keys[] = { "top10", "top30", "top10_one_book" };
	for (int i = 0; i < 3; i++)
		printf(", \"%s\": {\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"mean_ms\": %.3f, \"max_ms\": %.3f, "
		       "\"cpu_p50_ms\": %.3f, \"cpu_p99_ms\": %.3f}",
		       keys[i], ls[i]->p50, ls[i]->p99, ls[i]->mean, ls[i]->max, ls[i]->cpu_p50, ls[i]->cpu_p99);
	printf("}\n");
	vindex_free(vi);
	free(w);
	free(tid);
	free(centres);
	free(v);
	free(qs);
	free(qnorm);
	free(best);
	free(bests);
	return 0;
}
