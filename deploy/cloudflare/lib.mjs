// lib.mjs: the logic of the two worker entry files (middleware.mjs, server.mjs),
// kept free of OpenNext's build output and of `cloudflare:workers` so that it
// can be tested with Node's test runner (tests/cloudflare/).
//
// What this adds to OpenNext's multi-worker pattern:
//  - the middleware pins the server version it forwards to with
//    `Cloudflare-Workers-Version-Overrides: <SERVER_WORKER_NAME>="<WORKER_VERSION_ID>"`.
//    The key of that RFC 8941 dictionary is the server worker's NAME on the
//    platform (e.g. `main-server`); the guide's literal `server` names no
//    worker, so Cloudflare ignores the override, silently, and routes by the
//    deployment's percentages: version skew during every rollout.
//  - each worker reports the version that served a request in a response
//    header taken from its version metadata binding, so canary's probes can
//    see which (middleware, server) pair answered:
//    `x-canary-middleware-version` and `x-canary-server-version`, the
//    controller's defaults.
//
// Every function here takes values (request, env, handlers) and returns
// values; nothing reads globals. A misconfigured worker throws an Error
// naming the missing or malformed binding: a loud 1101 in the logs and a 5xx
// to the probes beats a worker that silently answers with no affinity.

export const OVERRIDE_HEADER = "Cloudflare-Workers-Version-Overrides";
export const MIDDLEWARE_VERSION_HEADER = "x-canary-middleware-version";
export const SERVER_VERSION_HEADER = "x-canary-server-version";

// Names of the bindings both wrangler configs declare (middleware.jsonc,
// server.jsonc).
export const PIN_VAR = "WORKER_VERSION_ID";
export const SERVER_NAME_VAR = "SERVER_WORKER_NAME";
export const VERSION_METADATA_BINDING = "CF_VERSION_METADATA";
export const SERVER_SERVICE_BINDING = "DEFAULT_WORKER";

// Cloudflare version ids are UUIDs. Checking the shape catches the config's
// placeholder (a deploy that bypassed `--var WORKER_VERSION_ID:<id>`) and
// empty or pasted-wrong values before they turn into an ignored override.
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// RFC 8941 section 3.1.2: key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
// Worker names (lowercase letters, digits, dashes) always fit.
const SF_KEY_RE = /^[a-z*][a-z0-9_\-.*]*$/;

// Longest version id accepted from the version metadata binding; it goes
// into a response header, so it is bounded and printable.
const MAX_VERSION_ID_LEN = 128;
const VERSION_TOKEN_RE = /^[\x21-\x7e]+$/;

// Throws an Error that names the worker, the binding and the config file that
// should declare it.
function configError(worker, what) {
	const file = worker === "middleware" ? "middleware.jsonc" : "server.jsonc";
	return new Error(`canary ${worker} worker: ${what} (see deploy/cloudflare/${file})`);
}

// serializeSfString returns `value` as an RFC 8941 sf-string: in double
// quotes, with `"` and `\` escaped. Throws on characters outside printable
// ASCII, which an sf-string cannot carry.
export function serializeSfString(value) {
	if (typeof value !== "string") {
		throw new TypeError(`sf-string: expected a string, got ${typeof value}`);
	}
	for (let i = 0; i < value.length; i++) {
		const c = value.charCodeAt(i);
		if (c < 0x20 || c > 0x7e) {
			throw new RangeError(
				`sf-string: character 0x${c.toString(16)} at offset ${i} is not printable ASCII`,
			);
		}
	}
	return `"${value.replace(/[\\"]/g, "\\$&")}"`;
}

// buildOverrideHeader returns the value of Cloudflare-Workers-Version-Overrides
// that pins worker `serverName` to version `versionId`: a one-member RFC 8941
// dictionary, e.g. `main-server="6f1c...-..."`. Throws when the name is not a
// valid dictionary key or the id is not a UUID: Cloudflare would ignore such
// an override without an error.
export function buildOverrideHeader(serverName, versionId) {
	if (typeof serverName !== "string" || !SF_KEY_RE.test(serverName)) {
		throw new RangeError(
			`override key: expected a worker name (lowercase letters, digits, "-", "_", "."), got ${JSON.stringify(serverName)}`,
		);
	}
	if (typeof versionId !== "string" || !UUID_RE.test(versionId)) {
		throw new RangeError(
			`override version: expected a version id (UUID), got ${JSON.stringify(versionId)}`,
		);
	}
	return `${serverName}=${serializeSfString(versionId)}`;
}

// middlewareConfig reads and checks the middleware's bindings. Returns
// { serverName, pin, ownVersion, server } or throws naming what is wrong.
export function middlewareConfig(env) {
	if (env === null || typeof env !== "object") {
		throw configError("middleware", "no env bindings");
	}
	const serverName = env[SERVER_NAME_VAR];
	if (typeof serverName !== "string" || serverName === "") {
		throw configError("middleware", `var ${SERVER_NAME_VAR} is missing: set it to the server worker's name`);
	}
	if (!SF_KEY_RE.test(serverName)) {
		throw configError(
			"middleware",
			`var ${SERVER_NAME_VAR}=${JSON.stringify(serverName)} is not a worker name`,
		);
	}
	const pin = env[PIN_VAR];
	if (typeof pin !== "string" || pin === "") {
		throw configError(
			"middleware",
			`var ${PIN_VAR} is missing: upload with --var ${PIN_VAR}:<server version id>`,
		);
	}
	if (!UUID_RE.test(pin)) {
		throw configError(
			"middleware",
			`var ${PIN_VAR}=${JSON.stringify(pin)} is not a version id (UUID): upload with --var ${PIN_VAR}:<server version id>`,
		);
	}
	const server = env[SERVER_SERVICE_BINDING];
	if (server === null || typeof server !== "object" || typeof server.fetch !== "function") {
		throw configError(
			"middleware",
			`service binding ${SERVER_SERVICE_BINDING} is missing: bind it to the server worker`,
		);
	}
	return { serverName, pin, ownVersion: versionOf("middleware", env), server };
}

// versionOf returns this worker's version id from its version metadata
// binding, or throws when the binding is absent or its id unusable in a
// header.
export function versionOf(worker, env) {
	const meta = env === null || typeof env !== "object" ? undefined : env[VERSION_METADATA_BINDING];
	if (meta === null || typeof meta !== "object") {
		throw configError(
			worker,
			`version metadata binding ${VERSION_METADATA_BINDING} is missing: add "version_metadata": {"binding": "${VERSION_METADATA_BINDING}"}`,
		);
	}
	const id = meta.id;
	if (typeof id !== "string" || id.length > MAX_VERSION_ID_LEN || !VERSION_TOKEN_RE.test(id)) {
		throw configError(worker, `${VERSION_METADATA_BINDING}.id is not a version id: ${JSON.stringify(id)}`);
	}
	return id;
}

// withHeaders returns a copy of `response` with `set` headers set and
// `remove` headers removed. The original is left alone: responses from
// fetch() and from caches have immutable headers on Workers. Status, status
// text, body stream and every other header carry over unchanged.
export function withHeaders(response, set, remove = []) {
	const headers = new Headers(response.headers);
	for (const name of remove) {
		headers.delete(name);
	}
	for (const [name, value] of Object.entries(set)) {
		headers.set(name, value);
	}
	const init = { status: response.status, statusText: response.statusText, headers };
	// Workers-only response fields (WebSocket upgrades, cf metadata) ride along.
	if (response.webSocket !== undefined && response.webSocket !== null) {
		init.webSocket = response.webSocket;
	}
	if (response.cf !== undefined) {
		init.cf = response.cf;
	}
	return new Response(response.body, init);
}

// pinnedRequest returns the request to send to the server worker: a copy of
// `request` whose Cloudflare-Workers-Version-Overrides header is replaced by
// exactly `override`. An override the client sent is never passed on: the
// client may pick a middleware version (the platform applies that before
// this code runs), but the server version is always that middleware's pin,
// so every response comes from a pair that was built together.
export function pinnedRequest(request, override) {
	const headers = new Headers(request.headers);
	headers.set(OVERRIDE_HEADER, override);
	return new Request(request, { headers });
}

// createMiddlewareFetch returns the middleware worker's fetch(request, env,
// ctx). `middlewareHandler` is OpenNext's middleware handler (Next middleware,
// routing, ISR/SSG cache interception): it answers a Response by itself
// (redirect, block, cache hit) or a Request to forward to the server worker.
// `runWithContext` is OpenNext's runWithCloudflareRequestContext.
//
// Answers by the middleware alone carry only the middleware's version header
// (a stale server header would credit a server that never ran); forwarded
// answers carry the server's header as the server set it, plus the
// middleware's.
export function createMiddlewareFetch({ middlewareHandler, runWithContext }) {
	if (typeof middlewareHandler !== "function" || typeof runWithContext !== "function") {
		throw new TypeError("createMiddlewareFetch: middlewareHandler and runWithContext are required");
	}
	return async function middlewareFetch(request, env, ctx) {
		// Checked on every request, cache hits included: a worker deployed
		// without its pin must not look healthy on cached pages.
		const cfg = middlewareConfig(env);
		const override = buildOverrideHeader(cfg.serverName, cfg.pin);
		return runWithContext(request, env, ctx, async () => {
			const reqOrResp = await middlewareHandler(request, env, ctx);
			if (reqOrResp instanceof Response) {
				return withHeaders(reqOrResp, { [MIDDLEWARE_VERSION_HEADER]: cfg.ownVersion }, [
					SERVER_VERSION_HEADER,
				]);
			}
			if (!(reqOrResp instanceof Request)) {
				throw new TypeError(
					"canary middleware worker: the middleware handler returned neither a Response nor a Request",
				);
			}
			const upstream = await cfg.server.fetch(pinnedRequest(reqOrResp, override), {
				// Redirects from the server go back to the client as they are.
				redirect: "manual",
				cf: { cacheEverything: false },
			});
			return withHeaders(upstream, { [MIDDLEWARE_VERSION_HEADER]: cfg.ownVersion });
		});
	};
}

// createServerFetch returns the server worker's fetch(request, env, ctx):
// OpenNext's Next server handler, with the server's version header added.
// The handler gets request.signal as a fourth argument, as the worker.js
// that opennextjs-cloudflare generates passes it.
export function createServerFetch({ handler, runWithContext }) {
	if (typeof handler !== "function" || typeof runWithContext !== "function") {
		throw new TypeError("createServerFetch: handler and runWithContext are required");
	}
	return async function serverFetch(request, env, ctx) {
		const ownVersion = versionOf("server", env);
		return runWithContext(request, env, ctx, async () => {
			const response = await handler(request, env, ctx, request.signal);
			return withHeaders(response, { [SERVER_VERSION_HEADER]: ownVersion });
		});
	};
}
