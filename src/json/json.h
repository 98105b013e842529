/* Strict, path-aware reading of JSON config objects (on cJSON).
 *
 * Every getter takes the object, its dotted path ("" at the top level,
 * "optimizer", "model.0") and a key. Errors name the full path and the bad
 * value: `optimizer.lr: expected a number > 0, got "fast"`.
 * Getters FILL DEFAULTS: a missing optional key is added to the object with its
 * default value, so after parsing, the tree is the resolved config that
 * reproduces the run on its own. A JSON null counts as missing only where a
 * getter says so (the `_opt` getters store null for "no value").
 * All errors are CN_ERR_ARG. */
#ifndef CN_JSON_H
#define CN_JSON_H

#include <cJSON.h>
#include "../tensor/core.h"

/* "path.key" (or "key" at top level; "path.3" for array items). */
void cn_json_join(char *out, size_t n, const char *path, const char *key);
/* Short rendering of a value for messages: "fast" (quoted), 3, true, null, an object, an array. */
const char *cn_json_describe(const cJSON *v, char *buf, size_t n);

/* Fails on any key of obj not in the NULL-terminated `allowed` list, naming it
 * (and suggesting the closest allowed key when one is near). */
cn_status cn_json_check_keys(const cJSON *obj, const char *path, const char *const *allowed);
/* obj must be a JSON object. */
cn_status cn_json_expect_object(const cJSON *obj, const char *path);

/* What a number key takes: `required` = 1: missing is an error; otherwise `def` is used and stored.
 * Range: the value must satisfy lo <(=) v <(=) hi (give both bounds: -INFINITY/INFINITY for none);
 * lo_open/hi_open make the bound strict. NaN/Inf never pass. E.g. a learning rate in (0, inf), default 1e-3:
 *   cn_json_number(obj, path, "lr", &(cn_json_num){.def = 1e-3, .lo = 0, .lo_open = 1, .hi = INFINITY}, &lr) */
typedef struct {
    int required;
    double def;
    double lo, hi;
    int lo_open, hi_open;
} cn_json_num;
cn_status cn_json_number(cJSON *obj, const char *path, const char *key, const cn_json_num *spec, double *out);
/* Integers (a number with no fractional part) in [lo, hi]. */
cn_status cn_json_int(cJSON *obj, const char *path, const char *key, int required, long long def,
                      long long lo, long long hi, long long *out);
cn_status cn_json_bool(cJSON *obj, const char *path, const char *key, int required, int def, int *out);
/* A string; if `choices` (NULL-terminated) is given, it must be one of them.
 * *out points into the tree (valid while the tree lives). */
cn_status cn_json_string(cJSON *obj, const char *path, const char *key, int required, const char *def,
                         const char *const *choices, const char **out);
/* Optional number that may be absent or null (stored as null): *present says which. The range is spec's
 * (its `required` and `def` are not used). */
cn_status cn_json_number_opt(cJSON *obj, const char *path, const char *key, const cn_json_num *spec, int *present,
                             double *out);

/* Sets obj[key] = value (replacing). Returns CN_ERR_NOMEM on failure. */
cn_status cn_json_set(cJSON *obj, const char *key, cJSON *value);
/* For the C constructors: sets obj.key = v unless v == 0 (the key's default); CN_ZERO sets 0. */
cn_status cn_json_set_opt(cJSON *obj, const char *key, double v);

/* Parses a whole file; errors name the file and the line/column of a syntax
 * error. Caller frees with cJSON_Delete. */
cn_status cn_json_load_file(const char *file, cJSON **out);
/* Parses text that must hold exactly one JSON value (no trailing garbage). A string or key holding the
 * escape \u0000 is an error naming its JSON path (cJSON would end the C string at the NUL). */
cn_status cn_json_parse(const char *text, const char *what, cJSON **out);

#endif
