// Stub of .open-next/.build/durable-objects/queue.js.
export class DOQueueHandler {}
