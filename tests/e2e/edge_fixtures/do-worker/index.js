// A counter Durable Object and a worker that does not use it.
export class Counter {
  constructor(state) {
    this.state = state;
  }
  async fetch() {
    return new Response("1");
  }
}
export default {
  async fetch() {
    return new Response("x");
  },
};
