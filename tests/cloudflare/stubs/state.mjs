// state.mjs: what the stubs do, set by each test. The stubs run on the main
// thread, so they share this module with the test files.
export const stubs = {
	// OpenNext's middleware handler: (request, env, ctx) => Response | Request.
	middlewareHandler: async () => {
		throw new Error("test did not set stubs.middlewareHandler");
	},
	// OpenNext's server handler: (request, env, ctx, signal) => Response.
	serverHandler: async () => {
		throw new Error("test did not set stubs.serverHandler");
	},
	// Every runWithCloudflareRequestContext call: {request, env, ctx}, and
	// whether the callback ran inside it.
	contexts: [],
	// true while a runWithCloudflareRequestContext callback is running.
	inContext: false,
};

export function resetStubs() {
	stubs.middlewareHandler = async () => {
		throw new Error("test did not set stubs.middlewareHandler");
	};
	stubs.serverHandler = async () => {
		throw new Error("test did not set stubs.serverHandler");
	};
	stubs.contexts = [];
	stubs.inContext = false;
}
