/*
 * rollout.c: reading the rollout file and the two wrangler configs.
 *
 * Every check names the file, the line and column of the offending value
 * (from the JSONC reader's position table) and its field path, and says what
 * was expected and what was found.
 */
#include "rollout.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonc.h"

/* Where we are: the document, its file name, the caller's message buffer. */
struct rl {
	const struct canary_jsonc *doc;
	const char *file;
	const char *dir; /* base of relative paths */
	char *err;
	size_t errlen;
};

/* "a string \"...\"", "the number 3", "an object", ... for messages. */
static const char *
rl_got(const cJSON *j, char *buf, size_t len)
{
	if (j == NULL) {
		snprintf(buf, len, "nothing");
	} else if (cJSON_IsString(j)) {
		size_t n = strlen(j->valuestring), cut = ROLLOUT_GOT_LEN;

		/* Cut before a UTF-8 sequence, never inside one. */
		if (n > cut) {
			while (cut > 0 && ((unsigned char)j->valuestring[cut] & 0xc0) == 0x80) {
				cut--;
			}
		}
		snprintf(buf, len, "\"%.*s%s\"", (int)cut, j->valuestring, n > cut ? "..." : "");
	} else if (cJSON_IsNumber(j)) {
		/* The shortest exact form: 1.1, not 1.1000000000000001. */
		canary_json_number(j->valuedouble, buf, len);
	} else if (cJSON_IsBool(j)) {
		snprintf(buf, len, "%s", cJSON_IsTrue(j) ? "true" : "false");
	} else if (cJSON_IsNull(j)) {
		snprintf(buf, len, "null");
	} else if (cJSON_IsArray(j)) {
		snprintf(buf, len, "an array");
	} else if (cJSON_IsObject(j)) {
		snprintf(buf, len, "an object");
	} else {
		snprintf(buf, len, "an unknown value");
	}
	return buf;
}

/* FILE:LINE:COLUMN: PATH: expected WHAT, got GOT. Returns CANARY_ECONFIG. */
static int __attribute__((format(printf, 4, 5)))
rl_fail(struct rl *c, const cJSON *at, const char *path, const char *fmt, ...)
{
	char what[CANARY_ERRLEN];
	int line = 0, col = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (at != NULL && canary_jsonc_where(c->doc, at, &line, &col) == 0) {
		return canary_errf(c->err, c->errlen, CANARY_ECONFIG, "%s:%d:%d: %s: %s", c->file,
		                   line, col, path, what);
	}
	return canary_errf(c->err, c->errlen, CANARY_ECONFIG, "%s: %s: %s", c->file, path, what);
}

/* The usual shape: "expected X, got <the value>". */
static int
rl_expected(struct rl *c, const cJSON *j, const char *path, const char *expected)
{
	char got[ROLLOUT_GOT_LEN + 16];
	return rl_fail(c, j, path, "expected %s, got %s", expected, rl_got(j, got, sizeof(got)));
}

/* Field paths: truncated at ROLLOUT_FIELD_PATH_LEN, which only shortens a
 * message (the return value is used, so the compiler knows it is checked). */
static void
rl_path(char *buf, size_t len, const char *parent, const char *key)
{
	int n;

	if (parent == NULL || parent[0] == '\0') {
		n = snprintf(buf, len, "%s", key);
	} else {
		n = snprintf(buf, len, "%s.%s", parent, key);
	}
	if (n < 0 && len > 0) {
		buf[0] = '\0';
	}
}

static void
rl_index(char *buf, size_t len, const char *parent, int i)
{
	if (snprintf(buf, len, "%s[%d]", parent, i) < 0 && len > 0) {
		buf[0] = '\0';
	}
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int
rl_keys(struct rl *c, const cJSON *obj, const char *path, const char *const *allowed)
{
	char p[ROLLOUT_FIELD_PATH_LEN], list[CANARY_ERRLEN / 2];
	const cJSON *m;
	size_t off = 0;

	cJSON_ArrayForEach(m, obj)
	{
		int ok = 0;
		for (int i = 0; allowed[i] != NULL; i++) {
			ok |= strcmp(m->string, allowed[i]) == 0;
		}
		if (ok) {
			continue;
		}
		list[0] = '\0';
		for (int i = 0; allowed[i] != NULL && off < sizeof(list); i++) {
			int n = snprintf(list + off, sizeof(list) - off, "%s%s", i > 0 ? ", " : "",
			                 allowed[i]);
			off += n > 0 ? (size_t)n : 0;
		}
		rl_path(p, sizeof(p), path, m->string);
		return rl_fail(c, m, p, "expected one of the keys %s, got unknown key \"%.*s\"",
		               list, ROLLOUT_GOT_LEN, m->string);
	}
	return 0;
}

static int
rl_object(struct rl *c, const cJSON *j, const char *path)
{
	if (!cJSON_IsObject(j)) {
		return rl_expected(c, j, path, "an object");
	}
	return 0;
}

/* The member key of obj; when required and absent, an error at obj. */
static int
rl_member(struct rl *c, const cJSON *obj, const char *path, const char *key, int required,
          const cJSON **out)
{
	char p[ROLLOUT_FIELD_PATH_LEN];

	*out = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (*out == NULL && required) {
		rl_path(p, sizeof(p), path, key);
		return rl_fail(c, obj, p, "expected key \"%s\", got an object without it", key);
	}
	return 0;
}

/* A string of 1..len-1 bytes (or 0 when empty_ok), copied into buf. */
/* rl_is_date: s is YYYY-MM-DD with a month 01..12 and a day 01..31. */
static int
rl_is_date(const char *s)
{
	int month, day;

	for (int i = 0; i < 10; i++) {
		if (i == 4 || i == 7 ? s[i] != '-' : !isdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	month = (s[5] - '0') * 10 + (s[6] - '0');
	day = (s[8] - '0') * 10 + (s[9] - '0');
	return s[10] == '\0' && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

static int
rl_str_value(struct rl *c, const cJSON *j, const char *path, char *buf, size_t len, int empty_ok)
{
	char what[64];

	if (!cJSON_IsString(j) || (!empty_ok && j->valuestring[0] == '\0') ||
	    strlen(j->valuestring) >= len) {
		snprintf(what, sizeof(what), "a %sstring of at most %zu bytes",
		         empty_ok ? "" : "non-empty ", len - 1);
		return rl_expected(c, j, path, what);
	}
	snprintf(buf, len, "%s", j->valuestring);
	return 0;
}

/* Optional string member: left as it is when absent. */
static int
rl_str(struct rl *c, const cJSON *obj, const char *path, const char *key, int required, char *buf,
       size_t len)
{
	char p[ROLLOUT_FIELD_PATH_LEN];
	const cJSON *j;
	int rv;

	if ((rv = rl_member(c, obj, path, key, required, &j)) != 0 || j == NULL) {
		return rv;
	}
	rl_path(p, sizeof(p), path, key);
	return rl_str_value(c, j, p, buf, len, 0);
}

static int
rl_int(struct rl *c, const cJSON *obj, const char *path, const char *key, long min, long max,
       int *out)
{
	char p[ROLLOUT_FIELD_PATH_LEN], what[96];
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (j == NULL) {
		return 0;
	}
	rl_path(p, sizeof(p), path, key);
	if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) ||
	    j->valuedouble < (double)min || j->valuedouble > (double)max) {
		snprintf(what, sizeof(what), "an integer %ld..%ld", min, max);
		return rl_expected(c, j, p, what);
	}
	*out = (int)j->valuedouble;
	return 0;
}

static int
rl_double(struct rl *c, const cJSON *obj, const char *path, const char *key, double min, double max,
          double *out)
{
	char p[ROLLOUT_FIELD_PATH_LEN], what[96];
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (j == NULL) {
		return 0;
	}
	rl_path(p, sizeof(p), path, key);
	if (!cJSON_IsNumber(j) || !(j->valuedouble >= min && j->valuedouble <= max)) {
		snprintf(what, sizeof(what), "a number %g..%g", min, max);
		return rl_expected(c, j, p, what);
	}
	*out = j->valuedouble;
	return 0;
}

static int
rl_bool(struct rl *c, const cJSON *obj, const char *path, const char *key, int *out)
{
	char p[ROLLOUT_FIELD_PATH_LEN];
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (j == NULL) {
		return 0;
	}
	rl_path(p, sizeof(p), path, key);
	if (!cJSON_IsBool(j)) {
		return rl_expected(c, j, p, "true or false");
	}
	*out = cJSON_IsTrue(j);
	return 0;
}

/* An array of 1..max elements (0..max when empty_ok). */
static int
rl_array(struct rl *c, const cJSON *j, const char *path, int max, int empty_ok, int *n)
{
	char what[96];
	int count;

	if (!cJSON_IsArray(j) || (count = cJSON_GetArraySize(j)) > max ||
	    (!empty_ok && count == 0)) {
		snprintf(what, sizeof(what), "an array of %d..%d elements", empty_ok ? 0 : 1, max);
		return rl_expected(c, j, path, what);
	}
	*n = count;
	return 0;
}

/* A path resolved against the rollout file's directory. */
static int
rl_resolve(struct rl *c, const cJSON *j, const char *path, char *buf, size_t len)
{
	char raw[ROLLOUT_PATH_LEN];
	int rv, n;

	if ((rv = rl_str_value(c, j, path, raw, sizeof(raw), 0)) != 0) {
		return rv;
	}
	if (raw[0] == '/' || strcmp(c->dir, ".") == 0) {
		n = snprintf(buf, len, "%s", raw);
	} else {
		n = snprintf(buf, len, "%s/%s", c->dir, raw);
	}
	if (n < 0 || (size_t)n >= len) {
		return rl_fail(c, j, path,
		               "expected a path of at most %zu bytes once resolved "
		               "against %s, got %d bytes",
		               len - 1, c->dir, n);
	}
	return 0;
}

static int
rl_path_member(struct rl *c, const cJSON *obj, const char *path, const char *key, int required,
               char *buf, size_t len)
{
	char p[ROLLOUT_FIELD_PATH_LEN];
	const cJSON *j;
	int rv;

	if ((rv = rl_member(c, obj, path, key, required, &j)) != 0 || j == NULL) {
		return rv;
	}
	rl_path(p, sizeof(p), path, key);
	return rl_resolve(c, j, p, buf, len);
}

/* An argv: 1..ROLLOUT_MAX_ARGV non-empty strings. */
static int
rl_argv(struct rl *c, const cJSON *obj, const char *path, const char *key,
        char (*argv)[ROLLOUT_ARG_LEN], int *argc)
{
	char p[ROLLOUT_FIELD_PATH_LEN], pi[ROLLOUT_FIELD_PATH_LEN];
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key), *e;
	int n = 0, i = 0, rv;

	if (j == NULL) {
		return 0;
	}
	rl_path(p, sizeof(p), path, key);
	if ((rv = rl_array(c, j, p, ROLLOUT_MAX_ARGV, 0, &n)) != 0) {
		return rv;
	}
	cJSON_ArrayForEach(e, j)
	{
		rl_index(pi, sizeof(pi), p, i);
		if ((rv = rl_str_value(c, e, pi, argv[i], ROLLOUT_ARG_LEN, 0)) != 0) {
			return rv;
		}
		i++;
	}
	*argc = n;
	return 0;
}

/* Names used in ids and messages: letters, digits, '.', '_', '-'. */
static int
rl_is_name(const char *s)
{
	if (s[0] == '\0' || s[0] == '.' || s[0] == '-') {
		return 0;
	}
	for (; *s != '\0'; s++) {
		char ch = *s;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')) {
			return 0;
		}
	}
	return 1;
}

static int
rl_name(struct rl *c, const cJSON *obj, const char *path, const char *key, char *buf, size_t len)
{
	char p[ROLLOUT_FIELD_PATH_LEN], what[128];
	int rv;

	if ((rv = rl_str(c, obj, path, key, 1, buf, len)) != 0) {
		return rv;
	}
	if (!rl_is_name(buf)) {
		rl_path(p, sizeof(p), path, key);
		snprintf(what, sizeof(what),
		         "a name of letters, digits, '.', '_' and '-' (at most %zu bytes)",
		         len - 1);
		return rl_expected(c, cJSON_GetObjectItemCaseSensitive(obj, key), p, what);
	}
	return 0;
}

/* HTTP header field names are RFC 9110 tokens; the agent puts them on the wire. */
static int
rl_is_token(const char *s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (s[0] == '\0') {
		return 0;
	}
	for (; *s != '\0'; s++) {
		char ch = *s;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr(extra, ch) != NULL)) {
			return 0;
		}
	}
	return 1;
}

static int
rl_url_scheme(const char *url, const char *const *schemes)
{
	for (int i = 0; schemes[i] != NULL; i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(url, schemes[i], n) == 0 && url[n] != '\0') {
			return 1;
		}
	}
	return 0;
}

/* ---- the wrangler configs ---- */

static int
rl_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int
rl_wrangler(const char *file, struct rollout_worker *w, char *err, size_t errlen)
{
	struct canary_jsonc *doc = NULL;
	struct rl c = {.file = file, .dir = ".", .err = err, .errlen = errlen};
	const cJSON *root, *j, *e;
	char p[ROLLOUT_FIELD_PATH_LEN];
	int rv, n, i;

	if (rl_has_suffix(file, ".toml")) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "%s: a wrangler.toml config is not read: give a wrangler.jsonc "
		                   "(or .json) config, which wrangler reads the same way",
		                   file);
	}
	if ((rv = canary_jsonc_read_file(file, ROLLOUT_MAX_FILE_BYTES, &doc, err, errlen)) != 0) {
		goto out;
	}
	c.doc = doc;
	root = canary_jsonc_root(doc);
	if ((rv = rl_object(&c, root, "(root)")) != 0) {
		goto out;
	}
	if ((rv = rl_str(&c, root, "", "name", 1, w->name, sizeof(w->name))) != 0 ||
	    (rv = rl_str(&c, root, "", "account_id", 0, w->account_id, sizeof(w->account_id))) !=
	        0) {
		goto out;
	}
	if ((rv = rl_str(&c, root, "", "compatibility_date", 0, w->compatibility_date,
	                 sizeof(w->compatibility_date))) != 0) {
		goto out;
	}
	if (w->compatibility_date[0] != '\0' && !rl_is_date(w->compatibility_date)) {
		rv = rl_expected(&c, cJSON_GetObjectItemCaseSensitive(root, "compatibility_date"),
		                 "compatibility_date", "a date YYYY-MM-DD");
		goto out;
	}
	/* The name goes into API paths and the version override header. */
	if (!deployer_name_ok(w->name, DEPLOYER_WORKER_NAME_MAX)) {
		char what[96];

		snprintf(
		    what, sizeof(what),
		    "a worker name of 1..%d letters, digits, '_' and '-', not starting with '-'",
		    DEPLOYER_WORKER_NAME_MAX);
		rv = rl_expected(&c, cJSON_GetObjectItemCaseSensitive(root, "name"), "name", what);
		goto out;
	}
	if ((j = cJSON_GetObjectItemCaseSensitive(root, "vars")) != NULL) {
		if ((rv = rl_object(&c, j, "vars")) != 0) {
			goto out;
		}
		cJSON_ArrayForEach(e, j)
		{
			struct rollout_var *v = &w->vars[w->n_vars];
			rl_path(p, sizeof(p), "vars", e->string);
			if (w->n_vars >= ROLLOUT_MAX_VARS) {
				rv = rl_fail(&c, e, p, "expected at most %d vars, got more",
				             ROLLOUT_MAX_VARS);
				goto out;
			}
			if (strlen(e->string) >= sizeof(v->name)) {
				rv = rl_fail(&c, e, p, "expected a var name of at most %zu bytes",
				             sizeof(v->name) - 1);
				goto out;
			}
			snprintf(v->name, sizeof(v->name), "%s", e->string);
			if (cJSON_IsString(e)) {
				if ((rv = rl_str_value(&c, e, p, v->value, sizeof(v->value), 1)) !=
				    0) {
					goto out;
				}
			} else {
				/* wrangler allows JSON vars; keep their text. */
				char *text = cJSON_PrintUnformatted(e);
				if (text == NULL) {
					rv = canary_errf(err, errlen, CANARY_ENOMEM, "%s: %s", file,
					                 canary_strerror(CANARY_ENOMEM));
					goto out;
				}
				n = snprintf(v->value, sizeof(v->value), "%s", text);
				free(text);
				if (n < 0 || (size_t)n >= sizeof(v->value)) {
					rv = rl_fail(&c, e, p,
					             "expected a value of at most %zu bytes",
					             sizeof(v->value) - 1);
					goto out;
				}
			}
			w->n_vars++;
		}
	}
	if ((j = cJSON_GetObjectItemCaseSensitive(root, "services")) != NULL) {
		if ((rv = rl_array(&c, j, "services", ROLLOUT_MAX_SERVICES, 1, &n)) != 0) {
			goto out;
		}
		i = 0;
		cJSON_ArrayForEach(e, j)
		{
			struct rollout_service *s = &w->services[i];
			rl_index(p, sizeof(p), "services", i);
			if ((rv = rl_object(&c, e, p)) != 0 ||
			    (rv = rl_str(&c, e, p, "binding", 1, s->binding, sizeof(s->binding))) !=
			        0 ||
			    (rv = rl_str(&c, e, p, "service", 1, s->service, sizeof(s->service))) !=
			        0) {
				goto out;
			}
			i++;
		}
		w->n_services = n;
	}
	if ((j = cJSON_GetObjectItemCaseSensitive(root, "version_metadata")) != NULL) {
		if ((rv = rl_object(&c, j, "version_metadata")) != 0 ||
		    (rv = rl_str(&c, j, "version_metadata", "binding", 1, w->version_metadata,
		                 sizeof(w->version_metadata))) != 0) {
			goto out;
		}
	}
	if ((j = cJSON_GetObjectItemCaseSensitive(root, "migrations")) != NULL) {
		if ((rv = rl_array(&c, j, "migrations", INT32_MAX, 1, &n)) != 0) {
			goto out;
		}
		i = 0;
		cJSON_ArrayForEach(e, j)
		{
			rl_index(p, sizeof(p), "migrations", i);
			if ((rv = rl_object(&c, e, p)) != 0 ||
			    (rv = rl_str(&c, e, p, "tag", 1, w->migration_tag,
			                 sizeof(w->migration_tag))) != 0) {
				goto out;
			}
			i++;
		}
	}
	rv = 0;
out:
	canary_jsonc_free(doc);
	return rv;
}

/* ---- the rollout file, section by section ---- */

static int
rl_workers(struct rl *c, const cJSON *root, struct rollout *r)
{
	static const char *const top[] = {"server", "middleware", NULL};
	static const char *const server_keys[] = {"config", NULL};
	static const char *const mw_keys[] = {"config", "pin_var", NULL};
	static const char *const names[2] = {"workers.server", "workers.middleware"};
	const cJSON *w, *j;
	int rv;

	if ((rv = rl_member(c, root, "", "workers", 1, &w)) != 0 ||
	    (rv = rl_object(c, w, "workers")) != 0 || (rv = rl_keys(c, w, "workers", top)) != 0) {
		return rv;
	}
	for (int k = 0; k < 2; k++) {
		if ((rv = rl_member(c, w, "workers", k == PLAN_SERVER ? "server" : "middleware", 1,
		                    &j)) != 0 ||
		    (rv = rl_object(c, j, names[k])) != 0 ||
		    (rv = rl_keys(c, j, names[k], k == PLAN_SERVER ? server_keys : mw_keys)) != 0 ||
		    (rv = rl_path_member(c, j, names[k], "config", 1, r->workers[k].config,
		                         sizeof(r->workers[k].config))) != 0) {
			return rv;
		}
		if (k == PLAN_MIDDLEWARE && (rv = rl_str(c, j, names[k], "pin_var", 0, r->pin_var,
		                                         sizeof(r->pin_var))) != 0) {
			return rv;
		}
	}
	return 0;
}

static int
rl_deployer(struct rl *c, const cJSON *root, struct rollout *r)
{
	static const char *const wrangler_keys[] = {"kind", "command", "timeout_s", NULL};
	static const char *const api_keys[] = {
	    "kind",           "base_url",       "account_id", "token_env",
	    "upload_command", "upload_modules", "timeout_s",  NULL};
	struct rollout_deployer *d = &r->deployer;
	const cJSON *j, *kind, *mods;
	char kindname[16], p[ROLLOUT_FIELD_PATH_LEN], pi[ROLLOUT_FIELD_PATH_LEN];
	int rv;

	if ((j = cJSON_GetObjectItemCaseSensitive(root, "deployer")) == NULL) {
		return 0;
	}
	if ((rv = rl_object(c, j, "deployer")) != 0 ||
	    (rv = rl_member(c, j, "deployer", "kind", 1, &kind)) != 0) {
		return rv;
	}
	if (!cJSON_IsString(kind) || strlen(kind->valuestring) >= sizeof(kindname) ||
	    (strcmp(kind->valuestring, "wrangler") != 0 && strcmp(kind->valuestring, "api") != 0)) {
		return rl_expected(c, kind, "deployer.kind", "\"wrangler\" or \"api\"");
	}
	snprintf(kindname, sizeof(kindname), "%s", kind->valuestring);
	if (strcmp(kindname, "wrangler") == 0) {
		d->kind = ROLLOUT_DEPLOYER_WRANGLER;
		if ((rv = rl_keys(c, j, "deployer", wrangler_keys)) != 0 ||
		    (rv = rl_argv(c, j, "deployer", "command", d->command, &d->n_command)) != 0) {
			return rv;
		}
	} else {
		d->kind = ROLLOUT_DEPLOYER_API;
		if ((rv = rl_keys(c, j, "deployer", api_keys)) != 0 ||
		    (rv = rl_argv(c, j, "deployer", "upload_command", d->command, &d->n_command)) !=
		        0 ||
		    (rv = rl_str(c, j, "deployer", "base_url", 0, d->base_url,
		                 sizeof(d->base_url))) != 0 ||
		    (rv = rl_str(c, j, "deployer", "account_id", 0, d->account_id,
		                 sizeof(d->account_id))) != 0 ||
		    (rv = rl_str(c, j, "deployer", "token_env", 0, d->token_env,
		                 sizeof(d->token_env))) != 0) {
			return rv;
		}
		if (!deployer_base_url_ok(d->base_url)) {
			return rl_expected(
			    c, cJSON_GetObjectItemCaseSensitive(j, "base_url"), "deployer.base_url",
			    "an http:// or https:// URL with a host, no spaces and no "
			    "query or fragment");
		}
		if ((mods = cJSON_GetObjectItemCaseSensitive(j, "upload_modules")) != NULL) {
			static const char *const mod_keys[] = {"server", "middleware", NULL};
			if ((rv = rl_object(c, mods, "deployer.upload_modules")) != 0 ||
			    (rv = rl_keys(c, mods, "deployer.upload_modules", mod_keys)) != 0) {
				return rv;
			}
			for (int k = 0; k < 2; k++) {
				const char *wk = k == PLAN_SERVER ? "server" : "middleware";
				const cJSON *list, *e;
				int n = 0, i = 0;
				rl_path(p, sizeof(p), "deployer.upload_modules", wk);
				if ((rv = rl_member(c, mods, "deployer.upload_modules", wk, 1,
				                    &list)) != 0 ||
				    (rv = rl_array(c, list, p, ROLLOUT_MAX_MODULES, 0, &n)) != 0) {
					return rv;
				}
				cJSON_ArrayForEach(e, list)
				{
					rl_index(pi, sizeof(pi), p, i);
					if ((rv = rl_resolve(c, e, pi, d->modules[k][i],
					                     sizeof(d->modules[k][i]))) != 0) {
						return rv;
					}
					i++;
				}
				d->n_modules[k] = n;
			}
		}
	}
	return rl_int(c, j, "deployer", "timeout_s", 1, ROLLOUT_MAX_SECONDS, &d->timeout_s);
}

static int
rl_steps(struct rl *c, const cJSON *root, struct rollout *r)
{
	static const char *const step_keys[] = {"step", "bake_s", NULL};
	char p[ROLLOUT_FIELD_PATH_LEN], why[CANARY_ERRLEN];
	const cJSON *j, *e, *name;
	int n = 0, i = 0, rv;

	if ((j = cJSON_GetObjectItemCaseSensitive(root, "steps")) == NULL) {
		r->n_steps = plan_default_steps(r->steps);
		return 0;
	}
	if ((rv = rl_array(c, j, "steps", PLAN_MAX_STEPS, 0, &n)) != 0) {
		return rv;
	}
	cJSON_ArrayForEach(e, j)
	{
		rl_index(p, sizeof(p), "steps", i);
		name = e;
		if (cJSON_IsObject(e)) {
			if ((rv = rl_keys(c, e, p, step_keys)) != 0 ||
			    (rv = rl_member(c, e, p, "step", 1, &name)) != 0) {
				return rv;
			}
			char q[ROLLOUT_FIELD_PATH_LEN];
			rl_path(q, sizeof(q), p, "step");
			snprintf(p, sizeof(p), "%s", q);
		} else if (!cJSON_IsString(e)) {
			return rl_expected(c, e, p,
			                   "a step name or {\"step\": ..., \"bake_s\": N}");
		}
		if (!cJSON_IsString(name) ||
		    plan_step_parse(name->valuestring, &r->steps[i], why, sizeof(why)) != 0) {
			char got[ROLLOUT_GOT_LEN + 16];
			return rl_fail(
			    c, name, p,
			    "expected a step name (server-0, middleware-dark, "
			    "middleware-P with P in 1..99, middleware-100, server-100), got %s",
			    rl_got(name, got, sizeof(got)));
		}
		if (cJSON_IsObject(e)) {
			rl_index(p, sizeof(p), "steps", i);
			if ((rv = rl_int(c, e, p, "bake_s", 0, ROLLOUT_MAX_SECONDS,
			                 &r->steps[i].bake_s)) != 0) {
				return rv;
			}
		}
		i++;
	}
	r->n_steps = n;
	if ((rv = plan_verify(r->steps, n, NULL, why, sizeof(why))) != 0) {
		return rl_fail(c, j, "steps", "%s", why);
	}
	return 0;
}

static int
rl_target(struct rl *c, const cJSON *e, const char *p, struct canary_target *t)
{
	static const char *const keys[] = {"id",       "url",        "method",
	                                   "requests", "timeout_ms", "expect_status",
	                                   "cache",    "body_match", NULL};
	char q[ROLLOUT_FIELD_PATH_LEN], qi[ROLLOUT_FIELD_PATH_LEN];
	const cJSON *j, *s;
	int rv, n = 0, i = 0, v;

	memset(t, 0, sizeof(*t));
	snprintf(t->method, sizeof(t->method), "%s", ROLLOUT_DEFAULT_METHOD);
	t->requests = ROLLOUT_DEFAULT_REQUESTS;
	t->timeout_ms = ROLLOUT_DEFAULT_TIMEOUT_MS;
	t->expect_status[0] = ROLLOUT_DEFAULT_EXPECT_STATUS;
	t->n_expect_status = 1;
	t->cache = CANARY_CACHE_NONE;
	if ((rv = rl_object(c, e, p)) != 0 || (rv = rl_keys(c, e, p, keys)) != 0 ||
	    (rv = rl_name(c, e, p, "id", t->id, sizeof(t->id))) != 0 ||
	    (rv = rl_str(c, e, p, "url", 1, t->url, sizeof(t->url))) != 0) {
		return rv;
	}
	/* What the probe will carry: refused here, with its position, rather
	 * than when the first probe is encoded. */
	if (!canary_is_url(t->url)) {
		rl_path(q, sizeof(q), p, "url");
		return rl_expected(c, cJSON_GetObjectItemCaseSensitive(e, "url"), q,
		                   "an http:// or https:// URL with a host and no spaces");
	}
	if ((j = cJSON_GetObjectItemCaseSensitive(e, "method")) != NULL) {
		rl_path(q, sizeof(q), p, "method");
		if (!cJSON_IsString(j) ||
		    (strcmp(j->valuestring, "GET") != 0 && strcmp(j->valuestring, "HEAD") != 0)) {
			return rl_expected(c, j, q, "\"GET\" or \"HEAD\"");
		}
		snprintf(t->method, sizeof(t->method), "%s", j->valuestring);
	}
	v = (int)t->requests;
	if ((rv = rl_int(c, e, p, "requests", 1, 100000, &v)) != 0) {
		return rv;
	}
	t->requests = (uint32_t)v;
	v = (int)t->timeout_ms;
	if ((rv = rl_int(c, e, p, "timeout_ms", 1, 600000, &v)) != 0) {
		return rv;
	}
	t->timeout_ms = (uint32_t)v;
	if ((j = cJSON_GetObjectItemCaseSensitive(e, "expect_status")) != NULL) {
		rl_path(q, sizeof(q), p, "expect_status");
		if ((rv = rl_array(c, j, q, CANARY_MAX_STATUSES, 0, &n)) != 0) {
			return rv;
		}
		cJSON_ArrayForEach(s, j)
		{
			rl_index(qi, sizeof(qi), q, i);
			if (!cJSON_IsNumber(s) || s->valuedouble != floor(s->valuedouble) ||
			    s->valuedouble < 100 || s->valuedouble > 599) {
				return rl_expected(c, s, qi, "an HTTP status 100..599");
			}
			/* The probe carries distinct statuses. */
			for (int k = 0; k < i; k++) {
				if (t->expect_status[k] == (int)s->valuedouble) {
					return rl_fail(
					    c, s, qi,
					    "expected a status not listed before, got %d "
					    "(also %s[%d])",
					    t->expect_status[k], q, k);
				}
			}
			t->expect_status[i++] = (int)s->valuedouble;
		}
		t->n_expect_status = n;
	}
	if ((j = cJSON_GetObjectItemCaseSensitive(e, "cache")) != NULL) {
		rl_path(q, sizeof(q), p, "cache");
		if (!cJSON_IsString(j) ||
		    (strcmp(j->valuestring, "isr") != 0 && strcmp(j->valuestring, "none") != 0)) {
			return rl_expected(c, j, q, "\"isr\" or \"none\"");
		}
		t->cache =
		    strcmp(j->valuestring, "isr") == 0 ? CANARY_CACHE_ISR : CANARY_CACHE_NONE;
	}
	return rl_str(c, e, p, "body_match", 0, t->body_match, sizeof(t->body_match));
}

static int
rl_probes(struct rl *c, const cJSON *root, struct rollout *r)
{
	static const char *const keys[] = {"interval_s",   "targets",        "headers",
	                                   "version_keys", "override_share", NULL};
	static const char *const hkeys[] = {"middleware_version", "server_version", "cache", NULL};
	char p[ROLLOUT_FIELD_PATH_LEN];
	const cJSON *pr, *j, *e;
	int rv, n = 0, i = 0, vk = 0;

	if ((rv = rl_member(c, root, "", "probes", 1, &pr)) != 0 ||
	    (rv = rl_object(c, pr, "probes")) != 0 || (rv = rl_keys(c, pr, "probes", keys)) != 0 ||
	    (rv = rl_int(c, pr, "probes", "interval_s", 1, ROLLOUT_MAX_SECONDS, &r->interval_s)) !=
	        0 ||
	    (rv = rl_double(c, pr, "probes", "override_share", 0, 100, &r->override_share)) != 0) {
		return rv;
	}
	vk = (int)r->version_keys;
	if ((rv = rl_int(c, pr, "probes", "version_keys", 0, CANARY_MAX_VERSION_KEYS, &vk)) != 0) {
		return rv;
	}
	r->version_keys = (uint32_t)vk;
	if ((rv = rl_member(c, pr, "probes", "targets", 1, &j)) != 0 ||
	    (rv = rl_array(c, j, "probes.targets", CANARY_MAX_TARGETS, 0, &n)) != 0) {
		return rv;
	}
	cJSON_ArrayForEach(e, j)
	{
		rl_index(p, sizeof(p), "probes.targets", i);
		if ((rv = rl_target(c, e, p, &r->targets[i])) != 0) {
			return rv;
		}
		for (int k = 0; k < i; k++) {
			if (strcmp(r->targets[k].id, r->targets[i].id) == 0) {
				char q[ROLLOUT_FIELD_PATH_LEN];
				rl_path(q, sizeof(q), p, "id");
				return rl_fail(c, cJSON_GetObjectItemCaseSensitive(e, "id"), q,
				               "expected a unique target id, got \"%s\" (also "
				               "probes.targets[%d])",
				               r->targets[i].id, k);
			}
		}
		i++;
	}
	r->n_targets = n;
	if ((j = cJSON_GetObjectItemCaseSensitive(pr, "headers")) != NULL) {
		char *dst[3] = {r->headers.middleware_version, r->headers.server_version,
		                r->headers.cache};
		if ((rv = rl_object(c, j, "probes.headers")) != 0 ||
		    (rv = rl_keys(c, j, "probes.headers", hkeys)) != 0) {
			return rv;
		}
		for (int k = 0; k < 3; k++) {
			const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, hkeys[k]);
			rl_path(p, sizeof(p), "probes.headers", hkeys[k]);
			if (h == NULL) {
				continue;
			}
			if (!cJSON_IsString(h) || !rl_is_token(h->valuestring) ||
			    strlen(h->valuestring) >= CANARY_HEADER_NAME_LEN) {
				char what[96];
				snprintf(what, sizeof(what),
				         "an HTTP header name of at most %d bytes",
				         CANARY_HEADER_NAME_LEN - 1);
				return rl_expected(c, h, p, what);
			}
			snprintf(dst[k], CANARY_HEADER_NAME_LEN, "%s", h->valuestring);
		}
	}
	return 0;
}

static int
rl_regions(struct rl *c, const cJSON *root, struct rollout *r)
{
	static const char *const keys[] = {"name", "min_agents", NULL};
	char p[ROLLOUT_FIELD_PATH_LEN], q[ROLLOUT_FIELD_PATH_LEN];
	const cJSON *j, *e;
	int rv, n = 0, i = 0;

	if ((rv = rl_member(c, root, "", "regions", 1, &j)) != 0 ||
	    (rv = rl_array(c, j, "regions", ROLLOUT_MAX_REGIONS, 0, &n)) != 0) {
		return rv;
	}
	cJSON_ArrayForEach(e, j)
	{
		struct gate_region *g = &r->regions[i];
		rl_index(p, sizeof(p), "regions", i);
		g->min_agents = ROLLOUT_DEFAULT_MIN_AGENTS;
		if ((rv = rl_object(c, e, p)) != 0 || (rv = rl_keys(c, e, p, keys)) != 0 ||
		    (rv = rl_name(c, e, p, "name", g->name, sizeof(g->name))) != 0 ||
		    (rv = rl_int(c, e, p, "min_agents", 1, GATE_MAX_AGENTS, &g->min_agents)) != 0) {
			return rv;
		}
		for (int k = 0; k < i; k++) {
			if (strcmp(r->regions[k].name, g->name) == 0) {
				rl_path(q, sizeof(q), p, "name");
				return rl_fail(c, cJSON_GetObjectItemCaseSensitive(e, "name"), q,
				               "expected a unique region name, got \"%s\" (also "
				               "regions[%d])",
				               g->name, k);
			}
		}
		i++;
	}
	r->n_regions = n;
	return 0;
}

static int
rl_gates(struct rl *c, const cJSON *root, struct rollout *r)
{
	static const char *const keys[] = {"max_error_rate",
	                                   "max_p95_ms",
	                                   "max_p99_ms",
	                                   "max_latency_ratio",
	                                   "min_isr_hit_ratio",
	                                   "failure_limit",
	                                   "inconclusive_limit",
	                                   "bake_s",
	                                   "converge_timeout_s",
	                                   "max_failed_regions",
	                                   "share_z",
	                                   "share_floor",
	                                   NULL};
	struct gate_policy *g = &r->gates;
	const cJSON *j;
	int rv;

	if ((j = cJSON_GetObjectItemCaseSensitive(root, "gates")) == NULL) {
		return 0;
	}
	if ((rv = rl_object(c, j, "gates")) != 0 || (rv = rl_keys(c, j, "gates", keys)) != 0 ||
	    (rv = rl_double(c, j, "gates", "max_error_rate", 0, 1, &g->max_error_rate)) != 0 ||
	    (rv = rl_double(c, j, "gates", "max_p95_ms", 0, ROLLOUT_MAX_SECONDS * 1000.0,
	                    &g->max_p95_ms)) != 0 ||
	    (rv = rl_double(c, j, "gates", "max_p99_ms", 0, ROLLOUT_MAX_SECONDS * 1000.0,
	                    &g->max_p99_ms)) != 0 ||
	    (rv = rl_double(c, j, "gates", "max_latency_ratio", 0, 1000, &g->max_latency_ratio)) !=
	        0 ||
	    (rv = rl_double(c, j, "gates", "min_isr_hit_ratio", 0, 1, &g->min_isr_hit_ratio)) !=
	        0 ||
	    (rv = rl_int(c, j, "gates", "failure_limit", 0, ROLLOUT_MAX_LIMIT_COUNT,
	                 &g->failure_limit)) != 0 ||
	    (rv = rl_int(c, j, "gates", "inconclusive_limit", 0, ROLLOUT_MAX_LIMIT_COUNT,
	                 &g->inconclusive_limit)) != 0 ||
	    (rv = rl_int(c, j, "gates", "max_failed_regions", 0, ROLLOUT_MAX_REGIONS,
	                 &g->max_failed_regions)) != 0 ||
	    (rv = rl_double(c, j, "gates", "share_z", 0, 10, &g->share_z)) != 0 ||
	    (rv = rl_double(c, j, "gates", "share_floor", 0, 1, &g->share_floor)) != 0 ||
	    (rv = rl_int(c, j, "gates", "bake_s", 0, ROLLOUT_MAX_SECONDS, &r->bake_s)) != 0 ||
	    (rv = rl_int(c, j, "gates", "converge_timeout_s", 1, ROLLOUT_MAX_SECONDS,
	                 &r->converge_timeout_s)) != 0) {
		return rv;
	}
	if (g->max_latency_ratio > 0 && g->max_latency_ratio < 1) {
		return rl_expected(c, cJSON_GetObjectItemCaseSensitive(j, "max_latency_ratio"),
		                   "gates.max_latency_ratio", "0 (off) or a ratio >= 1");
	}
	return 0;
}

static int
rl_links(struct rl *c, const cJSON *obj, const char *key, char (*urls)[CANARY_URL_LEN], int *n,
         int *tls)
{
	static const char *const schemes[] = {"tls+tcp://", "tls+tcp4://", "tls+tcp6://", "tcp://",
	                                      "tcp4://",    "tcp6://",     "ipc://",      NULL};
	char p[ROLLOUT_FIELD_PATH_LEN], pi[ROLLOUT_FIELD_PATH_LEN];
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key), *e;
	int rv, i = 0;

	if (j == NULL) {
		return 0;
	}
	rl_path(p, sizeof(p), "agents", key);
	if ((rv = rl_array(c, j, p, ROLLOUT_MAX_LINKS, 1, n)) != 0) {
		return rv;
	}
	cJSON_ArrayForEach(e, j)
	{
		rl_index(pi, sizeof(pi), p, i);
		if ((rv = rl_str_value(c, e, pi, urls[i], CANARY_URL_LEN, 0)) != 0) {
			return rv;
		}
		if (!rl_url_scheme(urls[i], schemes)) {
			return rl_expected(c, e, pi, "a tls+tcp://, tcp:// or ipc:// URL");
		}
		*tls |= strncmp(urls[i], "tls+", 4) == 0;
		i++;
	}
	return 0;
}

static int
rl_agents(struct rl *c, const cJSON *root, struct rollout *r)
{
	static const char *const keys[] = {"listen",          "dial", "tls", "insecure",
	                                   "round_timeout_s", NULL};
	static const char *const tls_keys[] = {"cert", "key", "ca", NULL};
	struct rollout_agents *a = &r->agents;
	const cJSON *j, *t;
	int rv, tls = 0;

	if ((rv = rl_member(c, root, "", "agents", 1, &j)) != 0 ||
	    (rv = rl_object(c, j, "agents")) != 0 || (rv = rl_keys(c, j, "agents", keys)) != 0 ||
	    (rv = rl_links(c, j, "listen", a->listen, &a->n_listen, &tls)) != 0 ||
	    (rv = rl_links(c, j, "dial", a->dial, &a->n_dial, &tls)) != 0 ||
	    (rv = rl_bool(c, j, "agents", "insecure", &a->insecure)) != 0 ||
	    /* It travels as the probe's deadline_ms. */
	    (rv = rl_int(c, j, "agents", "round_timeout_s", 1, CANARY_MAX_DEADLINE_MS / 1000,
	                 &a->round_timeout_s)) != 0) {
		return rv;
	}
	if (a->n_listen + a->n_dial == 0) {
		return rl_fail(
		    c, j, "agents",
		    "expected at least one URL in agents.listen or agents.dial, got none");
	}
	if ((t = cJSON_GetObjectItemCaseSensitive(j, "tls")) != NULL) {
		if ((rv = rl_object(c, t, "agents.tls")) != 0 ||
		    (rv = rl_keys(c, t, "agents.tls", tls_keys)) != 0 ||
		    (rv = rl_path_member(c, t, "agents.tls", "cert", 1, a->cert,
		                         sizeof(a->cert))) != 0 ||
		    (rv = rl_path_member(c, t, "agents.tls", "key", 1, a->key, sizeof(a->key))) !=
		        0 ||
		    (rv = rl_path_member(c, t, "agents.tls", "ca", 1, a->ca, sizeof(a->ca))) != 0) {
			return rv;
		}
	} else if (tls) {
		return rl_fail(c, j, "agents.tls",
		               "expected {\"cert\", \"key\", \"ca\"} for the tls+tcp:// URLs, got "
		               "no tls key");
	}
	return 0;
}

static void
rl_defaults(struct rollout *r)
{
	snprintf(r->pin_var, sizeof(r->pin_var), "%s", ROLLOUT_DEFAULT_PIN_VAR);
	r->deployer.kind = ROLLOUT_DEPLOYER_WRANGLER;
	snprintf(r->deployer.command[0], ROLLOUT_ARG_LEN, "npx");
	snprintf(r->deployer.command[1], ROLLOUT_ARG_LEN, "wrangler");
	r->deployer.n_command = 2;
	r->deployer.timeout_s = ROLLOUT_DEFAULT_DEPLOYER_TIMEOUT_S;
	snprintf(r->deployer.base_url, sizeof(r->deployer.base_url), "%s",
	         ROLLOUT_DEFAULT_API_BASE_URL);
	snprintf(r->deployer.token_env, sizeof(r->deployer.token_env), "%s",
	         ROLLOUT_DEFAULT_TOKEN_ENV);
	snprintf(r->headers.middleware_version, sizeof(r->headers.middleware_version), "%s",
	         ROLLOUT_DEFAULT_HEADER_MIDDLEWARE);
	snprintf(r->headers.server_version, sizeof(r->headers.server_version), "%s",
	         ROLLOUT_DEFAULT_HEADER_SERVER);
	snprintf(r->headers.cache, sizeof(r->headers.cache), "%s", ROLLOUT_DEFAULT_HEADER_CACHE);
	r->interval_s = ROLLOUT_DEFAULT_INTERVAL_S;
	r->version_keys = ROLLOUT_DEFAULT_VERSION_KEYS;
	r->override_share = ROLLOUT_DEFAULT_OVERRIDE_SHARE;
	gate_policy_default(&r->gates);
	r->bake_s = ROLLOUT_DEFAULT_BAKE_S;
	r->converge_timeout_s = ROLLOUT_DEFAULT_CONVERGE_TIMEOUT_S;
	r->agents.round_timeout_s = ROLLOUT_DEFAULT_ROUND_TIMEOUT_S;
	r->propagation_s = ROLLOUT_DEFAULT_PROPAGATION_S;
}

int
rollout_load(const char *path, struct rollout **rp, char *err, size_t errlen)
{
	static const char *const keys[] = {"name",      "workers",       "deployer", "steps",
	                                   "probes",    "regions",       "gates",    "agents",
	                                   "state_dir", "propagation_s", NULL};
	struct canary_jsonc *doc = NULL;
	struct rollout *r = NULL;
	struct rl c = {.file = path, .err = err, .errlen = errlen};
	const cJSON *root, *j;
	const char *slash;
	int rv;

	*rp = NULL;
	if (path == NULL || path[0] == '\0') {
		return canary_errf(err, errlen, CANARY_EINVAL, "rollout: expected a file name");
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "%s: %s", path,
		                 canary_strerror(CANARY_ENOMEM));
		goto out;
	}
	if (strlen(path) >= sizeof(r->path)) {
		rv = canary_errf(err, errlen, CANARY_EINVAL, "rollout: path longer than %zu bytes",
		                 sizeof(r->path) - 1);
		goto out;
	}
	snprintf(r->path, sizeof(r->path), "%s", path);
	if ((slash = strrchr(path, '/')) == NULL) {
		snprintf(r->dir, sizeof(r->dir), ".");
	} else if (slash == path) {
		snprintf(r->dir, sizeof(r->dir), "/");
	} else {
		snprintf(r->dir, sizeof(r->dir), "%.*s", (int)(slash - path), path);
	}
	c.dir = r->dir;
	rl_defaults(r);

	if ((rv = canary_jsonc_read_file(path, ROLLOUT_MAX_FILE_BYTES, &doc, err, errlen)) != 0) {
		goto out;
	}
	c.doc = doc;
	root = canary_jsonc_root(doc);
	if ((rv = rl_object(&c, root, "(root)")) != 0 || (rv = rl_keys(&c, root, "", keys)) != 0 ||
	    (rv = rl_name(&c, root, "", "name", r->name, sizeof(r->name))) != 0 ||
	    (rv = rl_workers(&c, root, r)) != 0 || (rv = rl_deployer(&c, root, r)) != 0 ||
	    (rv = rl_steps(&c, root, r)) != 0 || (rv = rl_probes(&c, root, r)) != 0 ||
	    (rv = rl_regions(&c, root, r)) != 0 || (rv = rl_gates(&c, root, r)) != 0 ||
	    (rv = rl_agents(&c, root, r)) != 0 ||
	    (rv = rl_int(&c, root, "", "propagation_s", 0, ROLLOUT_MAX_SECONDS,
	                 &r->propagation_s)) != 0) {
		goto out;
	}
	if ((j = cJSON_GetObjectItemCaseSensitive(root, "state_dir")) != NULL) {
		if ((rv = rl_resolve(&c, j, "state_dir", r->state_dir, sizeof(r->state_dir))) !=
		    0) {
			goto out;
		}
	} else {
		cJSON *def = cJSON_CreateString(ROLLOUT_DEFAULT_STATE_DIR);
		if (def == NULL) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "%s: %s", path,
			                 canary_strerror(CANARY_ENOMEM));
			goto out;
		}
		rv = rl_resolve(&c, def, "state_dir", r->state_dir, sizeof(r->state_dir));
		cJSON_Delete(def);
		if (rv != 0) {
			goto out;
		}
	}
	for (int k = 0; k < 2; k++) {
		if ((rv = rl_wrangler(r->workers[k].config, &r->workers[k], err, errlen)) != 0) {
			goto out;
		}
	}
	if (r->deployer.account_id[0] == '\0') {
		snprintf(r->deployer.account_id, sizeof(r->deployer.account_id), "%s",
		         r->workers[PLAN_SERVER].account_id);
	}
	*rp = r;
	r = NULL;
	rv = 0;
out:
	canary_jsonc_free(doc);
	rollout_free(r);
	return rv;
}

void
rollout_free(struct rollout *r)
{
	free(r);
}

const char *
rollout_worker_var(const struct rollout_worker *w, const char *name)
{
	for (int i = 0; i < w->n_vars; i++) {
		if (strcmp(w->vars[i].name, name) == 0) {
			return w->vars[i].value;
		}
	}
	return NULL;
}

/* Appends one problem to the lint message. */
static void __attribute__((format(printf, 4, 5)))
rl_lint_add(char *err, size_t errlen, int *count, const char *fmt, ...)
{
	size_t off = strlen(err);
	va_list ap;

	if (off + 3 >= errlen) {
		(*count)++;
		return;
	}
	if (*count > 0) {
		snprintf(err + off, errlen - off, "; ");
		off += 2;
	}
	va_start(ap, fmt);
	vsnprintf(err + off, errlen - off, fmt, ap);
	va_end(ap);
	(*count)++;
}

int
rollout_lint(const struct rollout *r, char *err, size_t errlen)
{
	const struct rollout_worker *s = &r->workers[PLAN_SERVER];
	const struct rollout_worker *m = &r->workers[PLAN_MIDDLEWARE];
	int problems = 0, bound = 0;

	char scratch[1];

	if (err == NULL || errlen == 0) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	if (rollout_worker_var(m, r->pin_var) == NULL) {
		rl_lint_add(err, errlen, &problems,
		            "%s: vars: expected the pin var %s, got no such var", m->config,
		            r->pin_var);
	}
	for (int i = 0; i < m->n_services; i++) {
		bound |= strcmp(m->services[i].service, s->name) == 0;
	}
	if (!bound) {
		rl_lint_add(err, errlen, &problems,
		            "%s: services: expected a service binding to the server worker \"%s\", "
		            "got none",
		            m->config, s->name);
	}
	if (m->version_metadata[0] == '\0') {
		rl_lint_add(err, errlen, &problems,
		            "%s: version_metadata: expected a version metadata binding, got none",
		            m->config);
	}
	if (s->version_metadata[0] == '\0') {
		rl_lint_add(err, errlen, &problems,
		            "%s: version_metadata: expected a version metadata binding, got none",
		            s->config);
	}
	if (strcmp(s->name, m->name) == 0) {
		rl_lint_add(err, errlen, &problems,
		            "%s, %s: expected two different worker names, got \"%s\" for both",
		            s->config, m->config, s->name);
	}
	return problems > 0 ? CANARY_ECONFIG : 0;
}
