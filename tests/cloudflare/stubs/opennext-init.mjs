// Stub of .open-next/cloudflare/init.js: records the call and runs fn inside
// a marked context, like the real AsyncLocalStorage wrapper.
import { stubs } from "./state.mjs";

export async function runWithCloudflareRequestContext(request, env, ctx, fn) {
	stubs.contexts.push({ request, env, ctx });
	stubs.inContext = true;
	try {
		return await fn();
	} finally {
		stubs.inContext = false;
	}
}
