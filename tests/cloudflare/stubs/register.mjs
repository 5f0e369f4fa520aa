// register.mjs: installs hooks.mjs. Imported first by the tests that load
// the worker entry files.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
