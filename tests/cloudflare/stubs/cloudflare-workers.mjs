// Stub of `cloudflare:workers`: WorkerEntrypoint keeps env and ctx as the
// runtime's does (constructor(ctx, env)).
export class WorkerEntrypoint {
	constructor(ctx, env) {
		this.ctx = ctx;
		this.env = env;
	}
}
