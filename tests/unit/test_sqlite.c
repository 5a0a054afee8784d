/* The SQLite backend's writer queue: writers of one process wait on each
 * other (not on SQLite's sleeping busy handler), readers never wait. */
#include "unit.h"

#include <pthread.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "store/db.h"
#include "store/db_int.h"

static char path[64];
static db *d;

DB_STMT(create_t, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
DB_STMT(count_t, "SELECT count(*) FROM t");
DB_STMT(insert_t, "INSERT INTO t (k, v) VALUES ($1, $2)");

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/bookd-test-sqlite-%d.db", (int)getpid());
	unlink(path);
	char url[80];
	snprintf(url, sizeof(url), "sqlite:%s", path);
	struct err e = { 0 };
	if (db_open(&d, url, 8, &e))
		return -1;
	db_conn *c;
	if (db_acquire(d, &c, &e))
		return -1;
	int rc = db_run(c, &create_t, NULL, 0, NULL, NULL, NULL, &e);
	db_release(c);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	db_close(d);
	char p[80];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int count_rows(void *ctx, const db_row *r)
{
	*(int64_t *)ctx = db_row_int(r, 0);
	return 0;
}

static int64_t rows(void)
{
	db_conn *c;
	struct err e = { 0 };
	assert_int_equal(db_acquire(d, &c, &e), 0);
	int64_t n = -1;
	assert_int_equal(db_run(c, &count_t, NULL, 0, count_rows, &n, NULL, &e), 0);
	db_release(c);
	return n;
}

static atomic_int inserted;
static atomic_llong done_at_us;

static void *autocommit_writer(void *arg)
{
	db_conn *c;
	struct err e = { 0 };
	if (db_acquire(d, &c, &e))
		return NULL;
	struct db_val v[] = { dbv_int((intptr_t)arg), dbv_text("late") };
	if (db_run(c, &insert_t, v, 2, NULL, NULL, NULL, &e) == 0)
		atomic_fetch_add(&inserted, 1);
	done_at_us = (long long)(now_ms() * 1000);
	db_release(c);
	return NULL;
}

/* A write waits for the open write transaction and goes through once it
 * commits; a read meanwhile does not wait. */
static void test_writer_waits_for_commit_not_for_a_sleep(void **state)
{
	(void)state;
	db_conn *c;
	struct err e = { 0 };
	assert_int_equal(db_acquire(d, &c, &e), 0);
	assert_int_equal(db_begin(c, &e), 0);
	struct db_val v[] = { dbv_int(1), dbv_text("first") };
	assert_int_equal(db_run(c, &insert_t, v, 2, NULL, NULL, NULL, &e), 0);

	atomic_store(&inserted, 0);
	done_at_us = 0;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, autocommit_writer, (void *)(intptr_t)2), 0);
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&inserted), 0); /* still waiting for our transaction */
	assert_int_equal(rows(), 0);                  /* a reader is not held up, sees nothing yet */

	double committed = now_ms();
	assert_int_equal(db_commit(c, &e), 0);
	db_release(c);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&inserted), 1);
	assert_int_equal(rows(), 2);
	assert_true((double)done_at_us / 1000 >= committed); /* not before the commit */
}

static void *hammer(void *arg)
{
	int base = (int)(intptr_t)arg;
	for (int i = 0; i < 200; i++) {
		db_conn *c;
		struct err e = { 0 };
		if (db_acquire(d, &c, &e))
			return NULL;
		int ok = 0;
		if (i % 2) {
			struct db_val v[] = { dbv_int(base + i), dbv_text("a") };
			ok = db_run(c, &insert_t, v, 2, NULL, NULL, NULL, &e) == 0;
		} else if (db_begin(c, &e) == 0) {
			struct db_val v[] = { dbv_int(base + i), dbv_text("t") };
			ok = db_run(c, &insert_t, v, 2, NULL, NULL, NULL, &e) == 0 &&
			     db_commit(c, &e) == 0;
		}
		if (ok)
			atomic_fetch_add(&inserted, 1);
		db_release(c);
	}
	return NULL;
}

/* Many threads writing at once, in transactions and autocommit: every
 * write lands; none fails busy. */
static void test_concurrent_writers_all_land(void **state)
{
	(void)state;
	int64_t before = rows();
	atomic_store(&inserted, 0);
	pthread_t th[6];
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)(intptr_t)(1000 * (i + 1))), 0);
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&inserted), 6 * 200);
	assert_int_equal(rows(), before + 6 * 200);
}

/* A failed write (a constraint) inside a transaction, then rollback: the
 * writer slot is given back. */
static void test_rollback_frees_the_writer(void **state)
{
	(void)state;
	db_conn *c;
	struct err e = { 0 };
	assert_int_equal(db_acquire(d, &c, &e), 0);
	assert_int_equal(db_begin(c, &e), 0);
	struct db_val v[] = { dbv_int(1), dbv_text("dup") };
	assert_int_not_equal(db_run(c, &insert_t, v, 2, NULL, NULL, NULL, &e), 0);
	db_rollback(c);
	db_release(c);
	atomic_store(&inserted, 0);
	autocommit_writer((void *)(intptr_t)5);
	assert_int_equal(atomic_load(&inserted), 1);
}

static long long file_size(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* Connections never checkpoint; the backend's checkpointer must notice a
 * commit on its own and copy the WAL into the database file soon after. */
static void test_a_commit_reaches_the_database_file(void **state)
{
	(void)state;
	long long before = file_size(path);
	assert_true(before >= 0);
	db_conn *c;
	struct err e = { 0 };
	char v[512];
	memset(v, 'x', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	assert_int_equal(db_acquire(d, &c, &e), 0);
	assert_int_equal(db_begin(c, &e), 0);
	for (int i = 0; i < 500; i++) {
		struct db_val p[] = { dbv_int(100000 + i), dbv_text(v) };
		assert_int_equal(db_run(c, &insert_t, p, 2, NULL, NULL, NULL, &e), 0);
	}
	assert_int_equal(db_commit(c, &e), 0);
	db_release(c);
	/* 250 KB went to the WAL; the file grows only by a checkpoint. */
	double deadline = now_ms() + 10000;
	while (file_size(path) < before + 200 * 1024 && now_ms() < deadline)
		usleep(20 * 1000);
	assert_true(file_size(path) >= before + 200 * 1024);
}

/* db_rollback with no transaction open is a no-op: the pooled connection
 * (here: its temporary table) survives. */
DB_STMT(temp_create, "CREATE TEMP TABLE mine (x INTEGER)");
DB_STMT(temp_count, "SELECT count(*) FROM mine");

static void test_rollback_outside_a_transaction_keeps_the_connection(void **state)
{
	(void)state;
	db_conn *c;
	struct err e = { 0 };
	assert_int_equal(db_acquire(d, &c, &e), 0);
	assert_int_equal(db_run(c, &temp_create, NULL, 0, NULL, NULL, NULL, &e), 0);
	db_rollback(c);
	db_release(c);
	assert_int_equal(db_acquire(d, &c, &e), 0); /* LIFO: the same connection, unless it was dropped */
	int64_t n = -1;
	assert_int_equal(db_run(c, &temp_count, NULL, 0, count_rows, &n, NULL, &e), 0);
	assert_int_equal(n, 0);
	db_release(c);
}

/* One handle, prepared on several connections at once, each with its own
 * parameters and rows. */
DB_STMT(echo, "SELECT $1 + 0");

static void test_a_handle_serves_every_connection(void **state)
{
	(void)state;
	db_conn *c[3];
	struct err e = { 0 };
	for (int i = 0; i < 3; i++)
		assert_int_equal(db_acquire(d, &c[i], &e), 0);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 3; i++) {
			struct db_val p[] = { dbv_int(10 * i + round) };
			int64_t v = -1;
			assert_int_equal(db_run(c[i], &echo, p, 1, count_rows, &v, NULL, &e), 0);
			assert_int_equal(v, 10 * i + round);
		}
	for (int i = 0; i < 3; i++)
		db_release(c[i]);
	assert_true(atomic_load(&echo.slot) > 0);
}

/* SQL built at run time runs uncached; a statement with two statements in
 * it is refused rather than half run. */
DB_STMT(two_statements, "SELECT 1; SELECT 2");

static void test_run_sql_and_refusals(void **state)
{
	(void)state;
	db_conn *c;
	struct err e = { 0 };
	assert_int_equal(db_acquire(d, &c, &e), 0);
	char sql[64];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", "t");
	int64_t n = -1;
	assert_int_equal(db_run_sql(c, sql, NULL, 0, count_rows, &n, NULL, &e), 0);
	assert_true(n >= 0);
	assert_int_equal(db_run(c, &two_statements, NULL, 0, NULL, NULL, NULL, &e), ERR_INTERNAL);
	db_release(c);
}

static int mode_of(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

/* The database, its WAL and shared memory are the owner's alone, whatever
 * the umask; an older database readable by others is made private at open. */
static void test_files_are_private(void **state)
{
	(void)state;
	char p[80];
	assert_int_equal(rows() >= 0, 1); /* the WAL and SHM exist once something was read */
	assert_int_equal(mode_of(path), 0600);
	snprintf(p, sizeof(p), "%s-wal", path);
	assert_int_equal(mode_of(p), 0600);
	snprintf(p, sizeof(p), "%s-shm", path);
	assert_int_equal(mode_of(p), 0600);

	assert_int_equal(chmod(path, 0644), 0);
	char url[80];
	snprintf(url, sizeof(url), "sqlite:%s", path);
	struct err e = { 0 };
	db *again;
	assert_int_equal(db_open(&again, url, 1, &e), 0);
	assert_int_equal(mode_of(path), 0600);
	db_close(again);
}

/* A backend whose first connect waits for a signal, then fails. */
static struct db_ops gated_ops;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_calls, gate_inside, gate_open;

static int gated_conn_open(db *dd, db_conn **out, struct err *e)
{
	pthread_mutex_lock(&gate_lock);
	int first = gate_calls++ == 0;
	if (first) {
		gate_inside = 1;
		pthread_cond_broadcast(&gate_cond);
		while (!gate_open)
			pthread_cond_wait(&gate_cond, &gate_lock);
	}
	pthread_mutex_unlock(&gate_lock);
	if (first)
		return err_set(e, ERR_UNAVAILABLE, "cannot connect");
	return db_sqlite_ops.conn_open(dd, out, e);
}

static void *acquire_failing(void *arg)
{
	db *dd = arg;
	db_conn *c = NULL;
	struct err e = { 0 };
	assert_int_not_equal(db_acquire(dd, &c, &e), 0);
	return NULL;
}

/* A connect fails while another, started later, has already succeeded: the
 * one that succeeded stays in the pool's list (closed at db_close, counted),
 * only the failed reservation is given back. */
static void test_failed_connect_keeps_a_concurrent_one(void **state)
{
	(void)state;
	char url[80];
	snprintf(url, sizeof(url), "sqlite:%s", path);
	db *p;
	struct err e = { 0 };
	assert_int_equal(db_open(&p, url, 4, &e), 0);
	db_conn *held[4];
	int nheld = 0; /* what the open left in the pool, held so that both below connect */
	while (p->free_list)
		assert_int_equal(db_acquire(p, &held[nheld++], &e), 0);
	gated_ops = db_sqlite_ops;
	gated_ops.conn_open = gated_conn_open;
	p->ops = &gated_ops;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, acquire_failing, p), 0);
	pthread_mutex_lock(&gate_lock);
	while (!gate_inside)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	db_conn *c = NULL;
	assert_int_equal(db_acquire(p, &c, &e), 0);
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	pthread_join(t, NULL);
	assert_int_equal(p->nopen, nheld + 1);
	int found = 0;
	for (int i = 0; i < p->nopen; i++)
		found += p->all[i] == c;
	assert_int_equal(found, 1);
	db_release(c);
	for (int i = 0; i < nheld; i++)
		db_release(held[i]);
	db_close(p);
}

int main(void)
{
	umask(022); /* a permissive one: the files must be private all the same */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_waits_for_commit_not_for_a_sleep),
		cmocka_unit_test(test_concurrent_writers_all_land),
		cmocka_unit_test(test_rollback_frees_the_writer),
		cmocka_unit_test(test_a_commit_reaches_the_database_file),
		cmocka_unit_test(test_rollback_outside_a_transaction_keeps_the_connection),
		cmocka_unit_test(test_a_handle_serves_every_connection),
		cmocka_unit_test(test_run_sql_and_refusals),
		cmocka_unit_test(test_files_are_private),
		cmocka_unit_test(test_failed_connect_keeps_a_concurrent_one),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
