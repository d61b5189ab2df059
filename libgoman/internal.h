/*
 * internal.h - what libgoman's files share and nothing outside sees (gm_ names).
 * GOMAN_TESTABLE: static in the library, visible in the unit-test build (curl's UNITTEST).
 */
#ifndef GOMAN_INTERNAL_H
#define GOMAN_INTERNAL_H
#ifdef GOMAN_UNIT_TEST
#define GOMAN_TESTABLE
#else
#define GOMAN_TESTABLE static
#endif
#endif
