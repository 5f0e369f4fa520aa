/*
 * fuzz_deployment.c: libFuzzer target for deployer_deployment_parse
 * (controller/deployer.h), the reader of every deployment the platform
 * reports: the stdout of `wrangler deployments status --json` and the
 * "result" of the API's deployment answers. The input is read the way the
 * wrangler backend reads that stdout (canary_json_parse_exact, then
 * deployer_deployment_parse).
 *
 * Promises checked:
 *   - a rejection is CANARY_EPARSE and its message starts with `where`;
 *   - canary_json_parse_exact accepts exactly one JSON value with only
 *     JSON whitespace around it (checked against cJSON's own end pointer);
 *   - an accepted deployment has a non-empty id that fits, 1 to
 *     CANARY_MAX_VERSIONS distinct versions with uuid ids and integer
 *     percentages 0..100 totalling 100 (deployer_check_deployment agrees);
 *   - deployer_deployment_json of it reads back (through text, as the
 *     journal stores it) to the same id and versions in the same order;
 *   - deployer_deployment_equal is reflexive and ignores the order;
 *   - deployer_deployment_format names every version with its percentage
 *     and fits DEPLOYER_DEP_TEXT_LEN.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "deployer.h"
#include "err.h"
#include "fuzz_util.h"
#include "jsonc.h"

#define FUZZ_WHERE "`wrangler deployments status --json`"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_deployment: %s: %s\n", what, detail);
	abort();
}

/* fuzz_check_valid: the shape an accepted deployment promises. */
static void
fuzz_check_valid(const struct deployment *dep)
{
	char why[CANARY_ERRLEN];

	if (dep->id[0] == '\0' || memchr(dep->id, '\0', sizeof(dep->id)) == NULL) {
		fuzz_die("accepted", "an empty or unterminated id");
	}
	if (deployer_check_deployment(dep, why, sizeof(why)) != 0) {
		fuzz_die("accepted what deployer_check_deployment refuses", why);
	}
}

/* fuzz_round_trip: json -> text -> parse gives dep back, in order. */
static void
fuzz_round_trip(const struct deployment *dep)
{
	struct deployment back;
	char err[CANARY_ERRLEN];
	cJSON *j, *again;
	char *text;

	j = deployer_deployment_json(dep);
	if (j == NULL) {
		fuzz_die("deployer_deployment_json", "failed");
	}
	text = cJSON_PrintUnformatted(j);
	if (text == NULL) {
		fuzz_die("cJSON_PrintUnformatted", "failed");
	}
	again = cJSON_Parse(text);
	if (deployer_deployment_parse(again, "round trip", &back, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", text);
		fuzz_die("the printed deployment does not read back", err);
	}
	if (strcmp(back.id, dep->id) != 0 || back.n_versions != dep->n_versions) {
		fuzz_die("round trip", "another id or version count");
	}
	for (int i = 0; i < dep->n_versions; i++) {
		if (strcmp(back.versions[i].version_id, dep->versions[i].version_id) != 0 ||
		    back.versions[i].percentage != dep->versions[i].percentage) {
			fuzz_die("round trip", "another version or percentage");
		}
	}
	cJSON_Delete(again);
	cJSON_free(text);
	cJSON_Delete(j);
}

/* fuzz_check_equal_format: equality and the one-line form. */
static void
fuzz_check_equal_format(const struct deployment *dep)
{
	struct deployment rev = *dep;
	char text[DEPLOYER_DEP_TEXT_LEN], item[DEPLOYER_DEP_TEXT_LEN];

	if (!deployer_deployment_equal(dep, dep)) {
		fuzz_die("deployer_deployment_equal", "a deployment differs from itself");
	}
	if (dep->n_versions == 2) {
		rev.versions[0] = dep->versions[1];
		rev.versions[1] = dep->versions[0];
		if (!deployer_deployment_equal(dep, &rev) ||
		    !deployer_deployment_equal(&rev, dep)) {
			fuzz_die("deployer_deployment_equal", "depends on the order of versions");
		}
	}
	rev = *dep;
	rev.versions[0].percentage = dep->versions[0].percentage == 0 ? 1 : 0;
	if (deployer_deployment_equal(dep, &rev)) {
		fuzz_die("deployer_deployment_equal", "ignores a percentage");
	}
	deployer_deployment_format(dep, text, sizeof(text));
	if (strlen(text) + 1 >= sizeof(text)) {
		fuzz_die("deployer_deployment_format", "filled its buffer: may be cut");
	}
	for (int i = 0; i < dep->n_versions; i++) {
		snprintf(item, sizeof(item), "%s@%d%%", dep->versions[i].version_id,
		         dep->versions[i].percentage);
		if (strstr(text, item) == NULL) {
			fprintf(stderr, "%s lacks %s\n", text, item);
			fuzz_die("deployer_deployment_format", "a version is missing");
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct deployment dep;
	char err[CANARY_ERRLEN];
	cJSON *doc;
	int rv;

	rv = canary_json_parse_exact((const char *)data, size, &doc, err, sizeof(err));
	if ((rv == 0) != fuzz_one_json_value((const char *)data, size)) {
		fuzz_die("canary_json_parse_exact", rv == 0 ? "accepted more than one value" : err);
	}
	if (rv != 0) {
		if (doc != NULL || strncmp(err, "byte ", 5) != 0) {
			fuzz_die("canary_json_parse_exact", "a refusal without its byte offset");
		}
		return 0;
	}
	rv = deployer_deployment_parse(doc, FUZZ_WHERE, &dep, err, sizeof(err));
	cJSON_Delete(doc);
	if (rv != 0) {
		if (rv != CANARY_EPARSE) {
			fuzz_die("unexpected code", canary_strerror(rv));
		}
		if (strncmp(err, FUZZ_WHERE ": ", strlen(FUZZ_WHERE ": ")) != 0) {
			fuzz_die("error does not start with where", err);
		}
		return 0;
	}
	fuzz_check_valid(&dep);
	fuzz_round_trip(&dep);
	fuzz_check_equal_format(&dep);
	return 0;
}
