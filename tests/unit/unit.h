/*
 * tests/unit/unit.h - what every cmocka unit test includes.
 * GOMAN_TESTABLE functions are visible here (the test build defines GOMAN_UNIT_TEST).
 */
#ifndef GOMAN_UNIT_H
#define GOMAN_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <cmocka.h>

/* Path of ../shared (the SigV4 suite lives there): $GOMAN_SHARED or ../shared from the
 * repository root (tests run from the root). */
static inline const char *unit_shared_dir(void)
{
	const char *s = getenv("GOMAN_SHARED");
	return s && *s ? s : "../shared";
}
#endif
