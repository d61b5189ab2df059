/*
 * jsonl_int.h - what jsonl.c shares with the rest of libgoman (gm_ names, hidden from the
 * shared library). No allocation.
 */
#ifndef GOMAN_JSONL_INT_H
#define GOMAN_JSONL_INT_H
#include <stddef.h>

/* Offset of the first byte of s that is not valid UTF-8 (overlongs, surrogates and code
 * points above U+10FFFF are invalid), or len when all of s is valid. */
size_t gm_utf8_invalid_at(const unsigned char *s, size_t len);

#endif
