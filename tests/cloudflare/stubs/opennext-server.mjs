// Stub of .open-next/server-functions/default/handler.mjs.
import { stubs } from "./state.mjs";

export async function handler(request, env, ctx, signal) {
	if (!stubs.inContext) {
		throw new Error("server handler called outside runWithCloudflareRequestContext");
	}
	return stubs.serverHandler(request, env, ctx, signal);
}
