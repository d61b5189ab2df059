/*
 * jsonl_int.h - what jsonl.c shares with the rest of libgoman (gm_ names, hidden from the
 * shared library). No allocation.
 */
#ifndef GOMAN_JSONL_INT_H
#define GOMAN_JSONL_INT_H
#include <stdbool.h>
#include <stddef.h>

/* Offset of the first byte of s that is not valid UTF-8 (overlongs, surrogates and code
 * points above U+10FFFF are invalid), or len when all of s is valid. */
size_t gm_utf8_invalid_at(const unsigned char *s, size_t len);

/* Adds v under k, taking v (freed when it cannot be added); false when v is NULL (a failed
 * create) or the add failed, so builders chain `ok = ok && gm_json_add(...)`. */
struct cJSON;
bool gm_json_add(struct cJSON *o, const char *k, struct cJSON *v);

#endif
