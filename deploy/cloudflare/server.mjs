// server.mjs: entry of the server worker (wrangler config server.jsonc). It
// runs the Next server through OpenNext's handler and reports its own
// version in x-canary-server-version (see lib.mjs). Requests reach it only
// through the middleware worker's DEFAULT_WORKER service binding.
//
// The paths below are OpenNext's build output (`npx opennextjs-cloudflare
// build`) at the root of the Next.js app, two directories up from this file
// when it sits in the app's deploy/cloudflare/.
import { runWithCloudflareRequestContext } from "../../.open-next/cloudflare/init.js";
import { handler } from "../../.open-next/server-functions/default/handler.mjs";

import { createServerFetch } from "./lib.mjs";

const serverFetch = createServerFetch({
	handler,
	runWithContext: runWithCloudflareRequestContext,
});

export default {
	async fetch(request, env, ctx) {
		return serverFetch(request, env, ctx);
	},
};
