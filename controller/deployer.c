/*
 * deployer.c: what both backends share: checking, parsing and printing a
 * deployment. Pure: values in, values out.
 */
#include "deployer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void
deployer_scrub(char *s, const char *token)
{
	size_t tl = token != NULL ? strlen(token) : 0;
	size_t stars = tl < 3 ? tl : 3;
	char *r = s, *w = s;

	if (tl == 0) {
		return;
	}
	/* In place: the stars are never longer than the token, so the
	 * output stays behind the input. */
	while (*r != '\0') {
		if (strncmp(r, token, tl) == 0) {
			memcpy(w, "***", stars);
			w += stars;
			r += tl;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

int
deployer_name_ok(const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > max || s[0] == '-') {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_')) {
			return 0;
		}
	}
	return 1;
}

int
deployer_base_url_ok(const char *s)
{
	return canary_is_url(s) && strpbrk(s, "?#") == NULL;
}

int
deployer_check_deployment(const struct deployment *dep, char *err, size_t errlen)
{
	int i, total = 0;

	if (dep == NULL || dep->n_versions < 1 || dep->n_versions > CANARY_MAX_VERSIONS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "deployment: expected 1 to %d versions, found %d",
		                   CANARY_MAX_VERSIONS, dep == NULL ? 0 : dep->n_versions);
	}
	for (i = 0; i < dep->n_versions; i++) {
		if (!canary_is_uuid(dep->versions[i].version_id)) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "deployment: versions[%d]: \"%.40s\" is not a version id", i,
			    dep->versions[i].version_id);
		}
		if (dep->versions[i].percentage < 0 || dep->versions[i].percentage > 100) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "deployment: versions[%d]: percentage %d outside 0..100",
			                   i, dep->versions[i].percentage);
		}
		if (i > 0 &&
		    strcmp(dep->versions[i].version_id, dep->versions[0].version_id) == 0) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "deployment: version %s listed twice",
			                   dep->versions[i].version_id);
		}
		total += dep->versions[i].percentage;
	}
	if (total != 100) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "deployment: percentages total %d, expected 100", total);
	}
	return 0;
}

int
deployer_deployment_parse(const cJSON *obj, const char *where, struct deployment *dep, char *err,
                          size_t errlen)
{
	const cJSON *id, *versions, *v;
	int i = 0, total = 0;

	memset(dep, 0, sizeof(*dep));
	if (!cJSON_IsObject(obj)) {
		return canary_errf(err, errlen, CANARY_EPARSE, "%s: expected a deployment object",
		                   where);
	}
	id = cJSON_GetObjectItemCaseSensitive(obj, "id");
	if (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
	    strlen(id->valuestring) >= sizeof(dep->id)) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "%s: id: expected a non-empty string of at most %zu characters",
		                   where, sizeof(dep->id) - 1);
	}
	memcpy(dep->id, id->valuestring, strlen(id->valuestring) + 1);
	versions = cJSON_GetObjectItemCaseSensitive(obj, "versions");
	if (!cJSON_IsArray(versions)) {
		return canary_errf(err, errlen, CANARY_EPARSE, "%s: versions: expected an array",
		                   where);
	}
	cJSON_ArrayForEach(v, versions)
	{
		const cJSON *vid, *pct;

		if (i >= CANARY_MAX_VERSIONS) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "%s: versions: more than %d versions", where,
			                   CANARY_MAX_VERSIONS);
		}
		if (!cJSON_IsObject(v)) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "%s: versions[%d]: expected an object", where, i);
		}
		vid = cJSON_GetObjectItemCaseSensitive(v, "version_id");
		if (!cJSON_IsString(vid) || !canary_is_uuid(vid->valuestring)) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "%s: versions[%d].version_id: expected a version uuid",
			                   where, i);
		}
		pct = cJSON_GetObjectItemCaseSensitive(v, "percentage");
		if (!cJSON_IsNumber(pct) || pct->valuedouble < 0 || pct->valuedouble > 100 ||
		    pct->valuedouble != floor(pct->valuedouble)) {
			return canary_errf(
			    err, errlen, CANARY_EPARSE,
			    "%s: versions[%d].percentage: expected an integer 0..100", where, i);
		}
		memcpy(dep->versions[i].version_id, vid->valuestring, CANARY_UUID_LEN);
		dep->versions[i].percentage = (int)pct->valuedouble;
		total += dep->versions[i].percentage;
		i++;
	}
	dep->n_versions = i;
	if (i == 0) {
		return canary_errf(err, errlen, CANARY_EPARSE, "%s: versions: empty", where);
	}
	if (i == 2 && strcmp(dep->versions[0].version_id, dep->versions[1].version_id) == 0) {
		return canary_errf(err, errlen, CANARY_EPARSE, "%s: versions: %s listed twice",
		                   where, dep->versions[0].version_id);
	}
	if (total != 100) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "%s: versions: percentages total %d, expected 100", where,
		                   total);
	}
	return 0;
}

int
deployer_deployment_equal(const struct deployment *a, const struct deployment *b)
{
	int i, j;

	/* A count out of range is no deployment: never equal, never read past
	 * the array. */
	if (a->n_versions != b->n_versions || a->n_versions < 0 ||
	    a->n_versions > CANARY_MAX_VERSIONS) {
		return 0;
	}
	for (i = 0; i < a->n_versions; i++) {
		int found = 0;

		for (j = 0; j < b->n_versions; j++) {
			if (strcmp(a->versions[i].version_id, b->versions[j].version_id) == 0 &&
			    a->versions[i].percentage == b->versions[j].percentage) {
				found = 1;
				break;
			}
		}
		if (!found) {
			return 0;
		}
	}
	return 1;
}

cJSON *
deployer_deployment_json(const struct deployment *dep)
{
	cJSON *o = cJSON_CreateObject(), *arr;
	int i;

	if (o == NULL) {
		return NULL;
	}
	if (cJSON_AddStringToObject(o, "id", dep->id) == NULL) {
		goto fail;
	}
	arr = cJSON_AddArrayToObject(o, "versions");
	if (arr == NULL) {
		goto fail;
	}
	for (i = 0; i < dep->n_versions && i < CANARY_MAX_VERSIONS; i++) {
		cJSON *v = cJSON_CreateObject();

		if (v == NULL) {
			goto fail;
		}
		cJSON_AddItemToArray(arr, v);
		if (cJSON_AddStringToObject(v, "version_id", dep->versions[i].version_id) == NULL ||
		    cJSON_AddNumberToObject(v, "percentage", dep->versions[i].percentage) == NULL) {
			goto fail;
		}
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

void
deployer_deployment_format(const struct deployment *dep, char *buf, size_t len)
{
	size_t w = 0;
	int i, n;

	if (len == 0) {
		return;
	}
	buf[0] = '\0';
	for (i = 0; i < dep->n_versions && i < CANARY_MAX_VERSIONS; i++) {
		n = snprintf(buf + w, len - w, "%s%s@%d%%", i > 0 ? " " : "",
		             dep->versions[i].version_id, dep->versions[i].percentage);
		if (n < 0 || (size_t)n >= len - w) {
			return;
		}
		w += (size_t)n;
	}
}
