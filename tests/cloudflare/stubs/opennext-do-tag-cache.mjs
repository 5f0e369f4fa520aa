// Stub of .open-next/.build/durable-objects/sharded-tag-cache.js.
export class DOShardedTagCache {}
