// hooks.mjs: Node module resolve hook that lets the tests import the real
// worker entry files (deploy/cloudflare/middleware.mjs, server.mjs). It maps
// `cloudflare:workers` and the exact OpenNext build-output paths the entry
// files import to the stubs in this directory. Any other .open-next path is
// an error, so an entry file that imports a path OpenNext does not produce
// fails the tests.
const STUBS = {
	"cloudflare:workers": "cloudflare-workers.mjs",
};
const OPEN_NEXT = {
	"cloudflare/init.js": "opennext-init.mjs",
	"middleware/handler.mjs": "opennext-middleware.mjs",
	"server-functions/default/handler.mjs": "opennext-server.mjs",
	".build/durable-objects/queue.js": "opennext-do-queue.mjs",
	".build/durable-objects/sharded-tag-cache.js": "opennext-do-tag-cache.mjs",
};
const MARKER = "/.open-next/";

export async function resolve(specifier, context, next) {
	if (Object.hasOwn(STUBS, specifier)) {
		return { url: new URL(STUBS[specifier], import.meta.url).href, shortCircuit: true };
	}
	const at = specifier.indexOf(MARKER);
	if (at >= 0) {
		// The entry files sit in <app>/deploy/cloudflare/: OpenNext's output
		// must be imported from <app>/.open-next/, i.e. "../../.open-next/".
		if (specifier.slice(0, at) !== "../..") {
			throw new Error(`${context.parentURL}: imports ${specifier}, expected ../../.open-next/...`);
		}
		const rest = specifier.slice(at + MARKER.length);
		if (!Object.hasOwn(OPEN_NEXT, rest)) {
			throw new Error(`${context.parentURL}: imports ${specifier}, which OpenNext does not build`);
		}
		return { url: new URL(OPEN_NEXT[rest], import.meta.url).href, shortCircuit: true };
	}
	return next(specifier, context);
}
