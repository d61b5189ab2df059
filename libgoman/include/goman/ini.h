/*
 * goman/ini.h - INI files in the ~/.aws/config dialect: [section] / [profile name],
 * key = value (or key: value; keys fold to lower case), '#' and ';' comments (whole lines,
 * or inline after whitespace), indented continuation lines (nested sub-sections such as
 * "s3 =\n  addressing_style = path" are stored as key "s3.addressing_style"; after a
 * non-empty value they continue it on a new line). Section names fold inner whitespace
 * ("[ profile  dev ]" is "profile dev"); repeated sections merge, later keys win; stray
 * lines (no section, no delimiter) are ignored.
 * Also used for goman's own config file ($XDG_CONFIG_HOME/goman/config).
 *
 * Ownership: goman_ini_load() returns a struct owned by the caller, freed with
 * goman_ini_free() (accepts NULL). Lookups return borrowed strings valid until the free.
 * Errors: goman_ini_load() returns NULL with err filled (ENOTFOUND when the file is absent).
 */
#ifndef GOMAN_INI_H
#define GOMAN_INI_H
#include "goman/error.h"

struct goman_ini;

struct goman_ini *goman_ini_load(const char *path, struct goman_err *err);
struct goman_ini *goman_ini_parse(const char *text, struct goman_err *err);
void goman_ini_free(struct goman_ini *ini);
/* section is the name inside the brackets as written ("default", "profile dev", "dev") */
const char *goman_ini_get(const struct goman_ini *ini, const char *section, const char *key);
/* iterate sections: returns the i-th section name or NULL past the end */
const char *goman_ini_section(const struct goman_ini *ini, size_t i);
/* iterate the keys of a section: the i-th key (and *value) or NULL past the end */
const char *goman_ini_key(const struct goman_ini *ini, const char *section, size_t i,
			  const char **value);

#endif
