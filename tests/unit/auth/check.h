/* check.h - the CHECK macro of the auth unit tests: counts checks and
 * failures, prints each failure with its line, never stops early. */
#ifndef MXG_TEST_AUTH_CHECK_H
#define MXG_TEST_AUTH_CHECK_H

#include <stdio.h>

static unsigned checks, failures;
#define CHECK(cond)                                                            \
	do {                                                                   \
		checks++;                                                      \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

static inline int check_summary(const char *name)
{
	printf("%s: %u checks, %u failures\n", name, checks, failures);
	return failures ? 1 : 0;
}

#endif
