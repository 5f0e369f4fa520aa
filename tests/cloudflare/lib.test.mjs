// lib.test.mjs: the pure pieces of deploy/cloudflare/lib.mjs: the override
// header, the sf-string encoding, the binding checks and header copying.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
	buildOverrideHeader,
	middlewareConfig,
	serializeSfString,
	versionOf,
	withHeaders,
	pinnedRequest,
	OVERRIDE_HEADER,
} from "../../deploy/cloudflare/lib.mjs";

const S1 = "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab";
const M1 = "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9";

function env(overrides = {}) {
	return {
		WORKER_VERSION_ID: S1,
		SERVER_WORKER_NAME: "main-server",
		CF_VERSION_METADATA: { id: M1, tag: "", timestamp: "2026-01-01T00:00:00Z" },
		DEFAULT_WORKER: { fetch: async () => new Response("") },
		...overrides,
	};
}

test("override header keys the server by its worker name, value an sf-string", () => {
	assert.equal(buildOverrideHeader("main-server", S1), `main-server="${S1}"`);
	assert.equal(buildOverrideHeader("docs.server_2", S1), `docs.server_2="${S1}"`);
});

test("override header refuses keys RFC 8941 does not allow and non-UUID versions", () => {
	for (const bad of ["", "Main-Server", "1server", "main server", "main=server", "a,b", undefined]) {
		assert.throws(() => buildOverrideHeader(bad, S1), /override key/, String(bad));
	}
	for (const bad of ["", "TO_REPLACE", "set-at-upload-by-canary-controller", `${S1}x`, `"${S1}"`, 42]) {
		assert.throws(() => buildOverrideHeader("main-server", bad), /override version/, String(bad));
	}
});

test("sf-string escapes quote and backslash, refuses non-printable characters", () => {
	assert.equal(serializeSfString('a"b\\c'), '"a\\"b\\\\c"');
	assert.equal(serializeSfString(""), '""');
	assert.throws(() => serializeSfString("a\nb"), /0xa at offset 1/);
	assert.throws(() => serializeSfString("caf\u00e9"), /0xe9 at offset 3/);
	assert.throws(() => serializeSfString(7), /expected a string/);
});

test("middleware config reads the name, the pin, its own version and the binding", () => {
	const cfg = middlewareConfig(env());
	assert.equal(cfg.serverName, "main-server");
	assert.equal(cfg.pin, S1);
	assert.equal(cfg.ownVersion, M1);
	assert.equal(typeof cfg.server.fetch, "function");
});

test("middleware config names each missing or malformed binding", () => {
	const cases = [
		[{ WORKER_VERSION_ID: undefined }, /var WORKER_VERSION_ID is missing/],
		[{ WORKER_VERSION_ID: "" }, /var WORKER_VERSION_ID is missing/],
		[{ WORKER_VERSION_ID: "TO_REPLACE" }, /WORKER_VERSION_ID="TO_REPLACE" is not a version id/],
		[{ SERVER_WORKER_NAME: undefined }, /var SERVER_WORKER_NAME is missing/],
		[{ SERVER_WORKER_NAME: "Main Server" }, /SERVER_WORKER_NAME="Main Server" is not a worker name/],
		[{ CF_VERSION_METADATA: undefined }, /version metadata binding CF_VERSION_METADATA is missing/],
		[{ CF_VERSION_METADATA: { id: "" } }, /CF_VERSION_METADATA.id is not a version id/],
		[{ CF_VERSION_METADATA: { id: "a\r\nx-evil: 1" } }, /CF_VERSION_METADATA.id is not a version id/],
		[{ CF_VERSION_METADATA: { id: "v".repeat(129) } }, /CF_VERSION_METADATA.id is not a version id/],
		[{ DEFAULT_WORKER: undefined }, /service binding DEFAULT_WORKER is missing/],
		[{ DEFAULT_WORKER: {} }, /service binding DEFAULT_WORKER is missing/],
	];
	for (const [over, re] of cases) {
		assert.throws(() => middlewareConfig(env(over)), re, JSON.stringify(over));
		assert.throws(() => middlewareConfig(env(over)), /deploy\/cloudflare\/middleware\.jsonc/);
	}
	assert.throws(() => middlewareConfig(undefined), /no env bindings/);
});

test("server version comes from the version metadata binding", () => {
	assert.equal(versionOf("server", { CF_VERSION_METADATA: { id: S1 } }), S1);
	assert.throws(() => versionOf("server", {}), /server worker: version metadata binding .*server\.jsonc/);
	assert.throws(() => versionOf("server", null), /CF_VERSION_METADATA is missing/);
});

test("withHeaders copies: status, body and other headers kept, original untouched", async () => {
	const orig = new Response("body text", {
		status: 418,
		statusText: "Teapot",
		headers: { "x-keep": "1", "x-drop": "2", "x-set": "old" },
	});
	const copy = withHeaders(orig, { "x-set": "new", "x-add": "3" }, ["x-drop"]);
	assert.equal(copy.status, 418);
	assert.equal(copy.statusText, "Teapot");
	assert.equal(copy.headers.get("x-keep"), "1");
	assert.equal(copy.headers.get("x-drop"), null);
	assert.equal(copy.headers.get("x-set"), "new");
	assert.equal(copy.headers.get("x-add"), "3");
	assert.equal(orig.headers.get("x-set"), "old");
	assert.equal(orig.headers.get("x-drop"), "2");
	assert.equal(await copy.text(), "body text");
});

test("withHeaders keeps multiple set-cookie headers and null-body statuses", () => {
	const h = new Headers();
	h.append("set-cookie", "a=1");
	h.append("set-cookie", "b=2");
	const copy = withHeaders(new Response(null, { status: 304, headers: h }), { "x-v": "1" });
	assert.equal(copy.status, 304);
	assert.deepEqual(copy.headers.getSetCookie(), ["a=1", "b=2"]);
});

test("pinnedRequest replaces any client override and keeps method, url, body", async () => {
	const req = new Request("https://docs.example.com/api/x?q=1", {
		method: "POST",
		headers: { [OVERRIDE_HEADER]: `main-server="evil", middleware="${M1}"`, "x-other": "1" },
		body: "payload",
	});
	const out = pinnedRequest(req, `main-server="${S1}"`);
	assert.equal(out.headers.get(OVERRIDE_HEADER), `main-server="${S1}"`);
	assert.equal(out.headers.get("x-other"), "1");
	assert.equal(out.method, "POST");
	assert.equal(out.url, "https://docs.example.com/api/x?q=1");
	assert.equal(await out.text(), "payload");
});
