// configs.test.mjs: the files users copy from deploy/cloudflare/ agree with
// each other and with what the entry files and canary-controller expect:
// the wrangler configs, the example rollout file and the CI workflow's exit
// code handling (run for real with a fake canary-controller).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import {
	MIDDLEWARE_VERSION_HEADER,
	PIN_VAR,
	SERVER_NAME_VAR,
	SERVER_SERVICE_BINDING,
	SERVER_VERSION_HEADER,
	VERSION_METADATA_BINDING,
} from "../../deploy/cloudflare/lib.mjs";
import { parseJsonc, readJsonc } from "./jsonc.mjs";

const dir = resolve(dirname(fileURLToPath(import.meta.url)), "../../deploy/cloudflare");
const middleware = readJsonc(join(dir, "middleware.jsonc"));
const server = readJsonc(join(dir, "server.jsonc"));
const rollout = readJsonc(join(dir, "rollout.example.jsonc"));

test("the JSONC reader used here handles comments, trailing commas and strings", () => {
	assert.deepEqual(parseJsonc('{"a": "x // y, }", /* c */ "b": [1, 2,], // z\n}'), {
		a: "x // y, }",
		b: [1, 2],
	});
	assert.throws(() => parseJsonc('{"a": 1 /* open'), /unterminated block comment/);
});

test("both workers: entry file present, nodejs_compat, version metadata binding", () => {
	for (const [name, cfg, entry] of [
		["middleware", middleware, "middleware.mjs"],
		["server", server, "server.mjs"],
	]) {
		assert.equal(cfg.main, entry, `${name}: main`);
		assert.ok(existsSync(join(dir, cfg.main)), `${name}: ${cfg.main} exists`);
		assert.ok(cfg.compatibility_flags.includes("nodejs_compat"), `${name}: nodejs_compat`);
		assert.deepEqual(cfg.version_metadata, { binding: VERSION_METADATA_BINDING }, `${name}: version_metadata`);
	}
});

test("middleware: pin var, server name var and DEFAULT_WORKER all name the server worker", () => {
	assert.equal(server.name, "main-server");
	assert.equal(middleware.name, "middleware");
	assert.ok(Object.hasOwn(middleware.vars, PIN_VAR), "pin var declared (the controller's lint requires it)");
	assert.equal(middleware.vars[SERVER_NAME_VAR], server.name);
	const binding = middleware.services.find((s) => s.binding === SERVER_SERVICE_BINDING);
	assert.ok(binding, "DEFAULT_WORKER service binding");
	assert.equal(binding.service, server.name);
	// The server is reached only through the binding.
	assert.equal(server.routes, undefined);
	assert.equal(server.vars?.[PIN_VAR], undefined);
});

test("example rollout file: DESIGN.md's shape, configs that exist, wrangler deployer", () => {
	assert.deepEqual(Object.keys(rollout).sort(), [
		"agents", "deployer", "gates", "name", "probes", "regions", "state_dir", "steps", "workers",
	]);
	assert.equal(resolve(dir, rollout.workers.server.config), join(dir, "server.jsonc"));
	assert.equal(resolve(dir, rollout.workers.middleware.config), join(dir, "middleware.jsonc"));
	assert.equal(rollout.workers.middleware.pin_var, PIN_VAR);
	assert.deepEqual(rollout.deployer, { kind: "wrangler", command: ["npx", "wrangler"], timeout_s: 300 });
	assert.deepEqual(rollout.steps, ["server-0", "middleware-10", "middleware-100", "server-100"]);
	assert.deepEqual(
		rollout.regions.map((r) => [r.name, r.min_agents]),
		[["enam", 1], ["weur", 1], ["apac", 1]],
	);
	assert.deepEqual(rollout.probes.headers, {
		middleware_version: MIDDLEWARE_VERSION_HEADER,
		server_version: SERVER_VERSION_HEADER,
		cache: "x-opennext-cache",
	});
	assert.ok(rollout.probes.targets.some((t) => t.cache === "isr"), "an ISR target");
	for (const t of rollout.probes.targets) {
		assert.match(t.url, /^https:\/\//, `${t.id}: https target`);
		assert.deepEqual(t.expect_status, [200]);
	}
	assert.deepEqual(Object.keys(rollout.agents.tls).sort(), ["ca", "cert", "key"]);
	assert.ok(rollout.agents.dial.every((u) => u.startsWith("tls+tcp://")), "mutual TLS to the agents");
});

// The CI workflow's rollout step, cut out of the YAML: the block under the
// `run: |` that follows the `canary-rollout-step` marker comment.
function rolloutScript() {
	const lines = readFileSync(join(dir, "ci-workflow.example.yml"), "utf8").split("\n");
	const marker = lines.findIndex((l) => l.includes("canary-rollout-step"));
	assert.ok(marker >= 0, "marker comment present");
	const run = lines.findIndex((l, i) => i > marker && /^\s+run: \|$/.test(l));
	assert.ok(run > marker, "run block after the marker");
	const indent = lines[run].search(/\S/);
	const body = [];
	for (let i = run + 1; i < lines.length; i++) {
		const l = lines[i];
		if (l.trim() !== "" && l.search(/\S/) <= indent) {
			break;
		}
		body.push(l.slice(indent + 2));
	}
	return body.join("\n");
}

test("CI workflow: builds with OpenNext and runs the example rollout with the token from secrets", () => {
	const yml = readFileSync(join(dir, "ci-workflow.example.yml"), "utf8");
	assert.match(yml, /run: npx opennextjs-cloudflare build/);
	assert.match(yml, /CLOUDFLARE_API_TOKEN: \$\{\{ secrets\.CLOUDFLARE_API_TOKEN \}\}/);
	assert.match(rolloutScript(), /canary-controller run -f deploy\/cloudflare\/rollout\.example\.jsonc/);
	// No expression is expanded inside the script itself: secrets stay in env.
	assert.doesNotMatch(rolloutScript(), /\$\{\{/);
});

test("CI workflow: the job fails on a non-zero exit and says what each code means", () => {
	const tmp = mkdtempSync(join(tmpdir(), "canary-ci-"));
	try {
		const fake = join(tmp, "canary-controller");
		writeFileSync(fake, '#!/bin/sh\necho "controller args: $*"\nexit "$FAKE_EXIT"\n');
		chmodSync(fake, 0o755);
		const script = join(tmp, "step.sh");
		writeFileSync(script, rolloutScript());
		const meaning = {
			0: /promoted/,
			1: /::error title=canary: exit 1::usage or config error/,
			2: /::error title=canary: exit 2::refused by preflight/,
			3: /::error title=canary: exit 3::rolled back/,
			4: /::error title=canary: exit 4::ROLLBACK FAILED.*page a person/,
			5: /::error title=canary: exit 5::stopped on drift/,
			9: /::error title=canary: exit 9::.*unexpectedly/,
		};
		for (const [code, re] of Object.entries(meaning)) {
			// GitHub runs `shell: bash` steps as `bash --noprofile --norc -eo pipefail`.
			const r = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", script], {
				env: { PATH: `${tmp}:${process.env.PATH}`, FAKE_EXIT: code },
				encoding: "utf8",
			});
			assert.equal(r.status, Number(code), `exit ${code}: ${r.stdout}${r.stderr}`);
			assert.match(r.stdout, re, `exit ${code}`);
			assert.match(r.stdout, /controller args: run -f deploy\/cloudflare\/rollout\.example\.jsonc/);
		}
	} finally {
		rmSync(tmp, { recursive: true, force: true });
	}
});
