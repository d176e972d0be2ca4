/* A minimal test harness: TAP output ("ok 3 - name"), then the summary line
 * "N passed, N failed, N skipped" that CI reads.  A test is a function;
 * CHECK records a failure with file:line and goes on, REQUIRE returns from
 * the test.  SKIP marks a test skipped (never counted as passed).
 *
 *   static void test_x(void) { CHECK(1 + 1 == 2); }
 *   int main(void) { KR_TEST(test_x); return kr_test_done(); }
 */
#ifndef KR_TEST_H
#define KR_TEST_H

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int kr_t_pass, kr_t_fail, kr_t_skip, kr_t_num;
static int kr_t_cur_failed, kr_t_cur_skipped;
static char kr_t_skip_why[256];

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			printf("#   %s:%d: CHECK failed: %s\n", __FILE__,    \
			       __LINE__, #cond);                             \
			kr_t_cur_failed = 1;                                 \
		}                                                            \
	} while (0)

#define CHECKF(cond, ...)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			printf("#   %s:%d: CHECK failed: %s: ", __FILE__,    \
			       __LINE__, #cond);                             \
			printf(__VA_ARGS__);                                 \
			printf("\n");                                        \
			kr_t_cur_failed = 1;                                 \
		}                                                            \
	} while (0)

#define REQUIRE(cond)                                                        \
	do {                                                                 \
		if (!(cond)) {                                               \
			printf("#   %s:%d: REQUIRE failed: %s\n", __FILE__,  \
			       __LINE__, #cond);                             \
			kr_t_cur_failed = 1;                                 \
			return;                                              \
		}                                                            \
	} while (0)

#define CHECK_STREQ(a, b)                                                    \
	do {                                                                 \
		const char *_a = (a), *_b = (b);                             \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                     \
			printf("#   %s:%d: CHECK_STREQ failed: \"%s\" != \"%s\"\n", \
			       __FILE__, __LINE__, _a ? _a : "(null)",       \
			       _b ? _b : "(null)");                          \
			kr_t_cur_failed = 1;                                 \
		}                                                            \
	} while (0)

/* Check that a string contains a substring. */
#define CHECK_CONTAINS(hay, needle)                                          \
	do {                                                                 \
		const char *_h = (hay), *_n = (needle);                      \
		if (!_h || !strstr(_h, _n)) {                                \
			printf("#   %s:%d: \"%s\" does not contain \"%s\"\n",\
			       __FILE__, __LINE__, _h ? _h : "(null)", _n);  \
			kr_t_cur_failed = 1;                                 \
		}                                                            \
	} while (0)

#define SKIP(...)                                                            \
	do {                                                                 \
		snprintf(kr_t_skip_why, sizeof(kr_t_skip_why), __VA_ARGS__); \
		kr_t_cur_skipped = 1;                                        \
		return;                                                      \
	} while (0)

static inline void kr_test_run(void (*fn)(void), const char *name)
{
	kr_t_cur_failed = 0;
	kr_t_cur_skipped = 0;
	kr_t_num++;
	fflush(stdout);
	fn();
	if (kr_t_cur_failed) {
		kr_t_fail++;
		printf("not ok %d - %s\n", kr_t_num, name);
	} else if (kr_t_cur_skipped) {
		kr_t_skip++;
		printf("ok %d - %s # SKIP %s\n", kr_t_num, name, kr_t_skip_why);
	} else {
		kr_t_pass++;
		printf("ok %d - %s\n", kr_t_num, name);
	}
	fflush(stdout);
}

#define KR_TEST(fn) kr_test_run(fn, #fn)

static inline int kr_test_done(void)
{
	printf("1..%d\n", kr_t_num);
	printf("%d passed, %d failed, %d skipped\n", kr_t_pass, kr_t_fail,
	       kr_t_skip);
	return kr_t_fail ? 1 : 0;
}

#endif
