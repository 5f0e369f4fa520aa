// workers.test.mjs: the two worker entry files themselves
// (deploy/cloudflare/middleware.mjs and server.mjs), loaded with OpenNext's
// modules and `cloudflare:workers` replaced by stubs (stubs/hooks.mjs). The
// middleware's DEFAULT_WORKER binding calls the real server entry, the way a
// service binding does, and records what it was sent.
import "./stubs/register.mjs";

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { stubs, resetStubs } from "./stubs/state.mjs";

const middlewareEntry = await import("../../deploy/cloudflare/middleware.mjs");
const serverEntry = await import("../../deploy/cloudflare/server.mjs");

const OVERRIDE = "Cloudflare-Workers-Version-Overrides";
const S0 = "11111111-1111-4111-8111-111111111111";
const S1 = "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab";
const M1 = "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9";

// Workers hands out responses from fetch() with immutable headers; the
// entry files must copy, never mutate. This wraps a Response so that any
// attempt to change its headers throws, as on the platform.
function immutable(response) {
	const frozen = new Headers(response.headers);
	for (const m of ["set", "append", "delete"]) {
		frozen[m] = () => {
			throw new TypeError("Can't modify immutable headers.");
		};
	}
	Object.defineProperty(response, "headers", { value: frozen });
	return response;
}

// A service binding to the server entry: the server runs with its own env
// (its own version metadata) and the binding records every call.
function serverBinding(serverVersion = S1) {
	const binding = {
		calls: [],
		async fetch(request, init) {
			binding.calls.push({ request, init, override: request.headers.get(OVERRIDE) });
			const env = { CF_VERSION_METADATA: { id: serverVersion, tag: "", timestamp: "" } };
			const res = await serverEntry.default.fetch(request, env, { waitUntil() {} });
			return immutable(res);
		},
	};
	return binding;
}

function middlewareEnv(overrides = {}) {
	return {
		WORKER_VERSION_ID: S1,
		SERVER_WORKER_NAME: "main-server",
		CF_VERSION_METADATA: { id: M1, tag: "", timestamp: "" },
		DEFAULT_WORKER: serverBinding(),
		...overrides,
	};
}

// Runs one request through the middleware entry as the runtime would:
// a new WorkerEntrypoint instance per request, constructed with (ctx, env).
async function viaMiddleware(request, env) {
	const Entry = middlewareEntry.default;
	const worker = new Entry({ waitUntil() {}, passThroughOnException() {} }, env);
	return worker.fetch(request);
}

// OpenNext's middleware handler forwarding a request it built itself (as
// OpenNext does after routing), keeping the client's headers.
function forwardAll(request) {
	return new Request(request.url, { method: request.method, headers: request.headers, body: request.body, duplex: "half" });
}

beforeEach(() => {
	resetStubs();
});

test("cache hit: the middleware answers alone, with its version, and sends no override", async () => {
	const env = middlewareEnv();
	stubs.middlewareHandler = async () =>
		immutable(
			new Response("cached page", {
				headers: { "x-opennext-cache": "HIT", "cache-control": "s-maxage=10", "x-canary-server-version": S0 },
			}),
		);
	const res = await viaMiddleware(new Request("https://docs.example.com/"), env);
	assert.equal(res.status, 200);
	assert.equal(await res.text(), "cached page");
	assert.equal(res.headers.get("x-canary-middleware-version"), M1);
	// The cached entry's stale server header does not credit a server that never ran.
	assert.equal(res.headers.get("x-canary-server-version"), null);
	assert.equal(res.headers.get("x-opennext-cache"), "HIT");
	assert.equal(res.headers.get("cache-control"), "s-maxage=10");
	assert.equal(env.DEFAULT_WORKER.calls.length, 0);
	assert.equal(stubs.contexts.length, 1, "middleware handler ran inside OpenNext's request context");
});

test("forwarded: the override is exactly <SERVER_WORKER_NAME>=\"<WORKER_VERSION_ID>\"", async () => {
	const env = middlewareEnv();
	stubs.middlewareHandler = async (req) => forwardAll(req);
	stubs.serverHandler = async () => new Response("rendered", { headers: { "x-nextjs-cache": "MISS" } });
	const res = await viaMiddleware(new Request("https://docs.example.com/isr"), env);
	assert.equal(env.DEFAULT_WORKER.calls.length, 1);
	const call = env.DEFAULT_WORKER.calls[0];
	assert.equal(call.override, `main-server="${S1}"`);
	assert.equal(call.init.redirect, "manual");
	assert.equal(call.init.cf.cacheEverything, false);
	assert.equal(res.status, 200);
	assert.equal(await res.text(), "rendered");
	assert.equal(res.headers.get("x-nextjs-cache"), "MISS");
	// Both versions on the final response: the middleware's and the server's.
	assert.equal(res.headers.get("x-canary-middleware-version"), M1);
	assert.equal(res.headers.get("x-canary-server-version"), S1);
});

test("the override key is the server worker's name from the var, not the literal 'server'", async () => {
	const env = middlewareEnv({ SERVER_WORKER_NAME: "docs-server", WORKER_VERSION_ID: S0 });
	stubs.middlewareHandler = async (req) => forwardAll(req);
	stubs.serverHandler = async () => new Response("ok");
	await viaMiddleware(new Request("https://docs.example.com/api/health"), env);
	assert.equal(env.DEFAULT_WORKER.calls[0].override, `docs-server="${S0}"`);
	assert.doesNotMatch(env.DEFAULT_WORKER.calls[0].override, /^server=/);
});

test("a client's override for the server is not trusted: it is replaced by the pin", async () => {
	const env = middlewareEnv();
	stubs.middlewareHandler = async (req) => forwardAll(req);
	stubs.serverHandler = async (req) =>
		new Response(`server saw: ${req.headers.get(OVERRIDE)}`);
	const req = new Request("https://docs.example.com/api/health", {
		headers: { [OVERRIDE]: `main-server="${S0}", middleware="${M1}"` },
	});
	const res = await viaMiddleware(req, env);
	assert.equal(env.DEFAULT_WORKER.calls[0].override, `main-server="${S1}"`);
	assert.equal(await res.text(), `server saw: main-server="${S1}"`);
});

test("a server response keeps its status, redirect location, cookies and body", async () => {
	const env = middlewareEnv();
	stubs.middlewareHandler = async (req) => forwardAll(req);
	stubs.serverHandler = async (req) => {
		const h = new Headers({ location: "/login" });
		h.append("set-cookie", "a=1");
		h.append("set-cookie", "b=2");
		return new Response(`posted ${await req.text()}`, { status: 307, headers: h });
	};
	const res = await viaMiddleware(
		new Request("https://docs.example.com/form", { method: "POST", body: "x=1" }),
		env,
	);
	assert.equal(res.status, 307);
	assert.equal(res.headers.get("location"), "/login");
	assert.deepEqual(res.headers.getSetCookie(), ["a=1", "b=2"]);
	assert.equal(await res.text(), "posted x=1");
	assert.equal(res.headers.get("x-canary-server-version"), S1);
});

test("a redirect answered by the middleware alone carries no server version", async () => {
	const env = middlewareEnv();
	stubs.middlewareHandler = async () => Response.redirect("https://docs.example.com/new", 308);
	const res = await viaMiddleware(new Request("https://docs.example.com/old"), env);
	assert.equal(res.status, 308);
	assert.equal(res.headers.get("location"), "https://docs.example.com/new");
	assert.equal(res.headers.get("x-canary-middleware-version"), M1);
	assert.equal(res.headers.get("x-canary-server-version"), null);
	assert.equal(env.DEFAULT_WORKER.calls.length, 0);
});

test("missing or placeholder vars fail loudly, before OpenNext runs", async () => {
	const cases = [
		[{ WORKER_VERSION_ID: undefined }, /WORKER_VERSION_ID is missing/],
		[{ WORKER_VERSION_ID: "set-at-upload-by-canary-controller" }, /WORKER_VERSION_ID=.* is not a version id/],
		[{ SERVER_WORKER_NAME: undefined }, /SERVER_WORKER_NAME is missing/],
		[{ CF_VERSION_METADATA: undefined }, /CF_VERSION_METADATA is missing/],
		[{ DEFAULT_WORKER: undefined }, /DEFAULT_WORKER is missing/],
	];
	let handlerRuns = 0;
	stubs.middlewareHandler = async () => {
		handlerRuns++;
		return new Response("cached", { headers: { "x-opennext-cache": "HIT" } });
	};
	for (const [over, re] of cases) {
		await assert.rejects(viaMiddleware(new Request("https://docs.example.com/"), middlewareEnv(over)), re);
	}
	assert.equal(handlerRuns, 0, "no request is answered by a misconfigured middleware, cache hits included");
});

test("server entry: version header, request.signal passed, runs in OpenNext's context", async () => {
	let seen;
	stubs.serverHandler = async (req, env, ctx, signal) => {
		seen = { req, env, ctx, signal };
		return new Response("page", { status: 201, headers: { "x-nextjs-cache": "HIT" } });
	};
	const req = new Request("https://docs.example.com/api/now");
	const env = { CF_VERSION_METADATA: { id: S0 } };
	const ctx = { waitUntil() {} };
	const res = await serverEntry.default.fetch(req, env, ctx);
	assert.equal(res.status, 201);
	assert.equal(res.headers.get("x-canary-server-version"), S0);
	assert.equal(res.headers.get("x-nextjs-cache"), "HIT");
	assert.equal(res.headers.get("x-canary-middleware-version"), null);
	assert.equal(seen.req, req);
	assert.equal(seen.env, env);
	assert.equal(seen.ctx, ctx);
	assert.equal(seen.signal, req.signal);
	assert.equal(stubs.contexts.length, 1);
});

test("server entry without its version metadata binding fails loudly", async () => {
	let runs = 0;
	stubs.serverHandler = async () => {
		runs++;
		return new Response("page");
	};
	await assert.rejects(
		serverEntry.default.fetch(new Request("https://docs.example.com/"), {}, {}),
		/server worker: version metadata binding CF_VERSION_METADATA is missing/,
	);
	assert.equal(runs, 0);
});

test("a middleware handler answer that is neither Response nor Request is an error", async () => {
	stubs.middlewareHandler = async () => ({ status: 200 });
	await assert.rejects(
		viaMiddleware(new Request("https://docs.example.com/"), middlewareEnv()),
		/neither a Response nor a Request/,
	);
});

test("the middleware entry exports OpenNext's Durable Object classes", () => {
	assert.equal(typeof middlewareEntry.DOQueueHandler, "function");
	assert.equal(typeof middlewareEntry.DOShardedTagCache, "function");
});
