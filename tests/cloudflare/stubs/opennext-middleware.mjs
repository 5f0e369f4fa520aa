// Stub of .open-next/middleware/handler.mjs.
import { stubs } from "./state.mjs";

export async function handler(request, env, ctx) {
	if (!stubs.inContext) {
		throw new Error("middleware handler called outside runWithCloudflareRequestContext");
	}
	return stubs.middlewareHandler(request, env, ctx);
}
