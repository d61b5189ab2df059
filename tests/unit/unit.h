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

/* The AWS SigV4 test suite carried by the tree (tests run from the repository root). */
#define UNIT_AWS_SIGV4_SUITE "tests/vectors/aws-sigv4/v4"
#endif
