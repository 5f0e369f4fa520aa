// Forwards to the server worker pinned by WORKER_VERSION_ID.
export default {
  async fetch(request, env) {
    const headers = new Headers(request.headers);
    headers.set("Cloudflare-Workers-Version-Overrides", `main-server="${env.WORKER_VERSION_ID}"`);
    const res = await env.DEFAULT_WORKER.fetch(new Request(request, { headers }));
    const out = new Response(res.body, res);
    out.headers.set("x-canary-middleware-version", env.CF_VERSION_METADATA.id);
    return out;
  },
};
