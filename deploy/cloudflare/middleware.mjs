// middleware.mjs: entry of the middleware worker (wrangler config
// middleware.jsonc). It runs OpenNext's middleware handler (Next middleware,
// OpenNext routing, ISR/SSG cache interception) and forwards everything it
// does not answer itself to the server worker through the DEFAULT_WORKER
// service binding, pinned to the server version this middleware was built
// with. The logic lives in lib.mjs (tested by tests/cloudflare/); this file
// only wires OpenNext's build output to it.
//
// The paths below are OpenNext's build output (`npx opennextjs-cloudflare
// build`) at the root of the Next.js app, two directories up from this file
// when it sits in the app's deploy/cloudflare/.
import { WorkerEntrypoint } from "cloudflare:workers";

import { runWithCloudflareRequestContext } from "../../.open-next/cloudflare/init.js";
import { handler as middlewareHandler } from "../../.open-next/middleware/handler.mjs";

import { createMiddlewareFetch } from "./lib.mjs";

// The Durable Objects of OpenNext's queue and sharded tag cache live in the
// middleware worker (middleware.jsonc declares them and their migration).
export { DOQueueHandler } from "../../.open-next/.build/durable-objects/queue.js";
export { DOShardedTagCache } from "../../.open-next/.build/durable-objects/sharded-tag-cache.js";

const middlewareFetch = createMiddlewareFetch({
	middlewareHandler,
	runWithContext: runWithCloudflareRequestContext,
});

export default class extends WorkerEntrypoint {
	async fetch(request) {
		return middlewareFetch(request, this.env, this.ctx);
	}
}
