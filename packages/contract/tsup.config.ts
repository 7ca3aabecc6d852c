import { defineConfig } from "tsup";
import base from "../../tsup.config.base.js";

// The worker runs in child processes as its own ES module (dist/worker.js). The CommonJS build
// finds it through __filename, so its empty import.meta is expected.
export default defineConfig({
  ...(base as object),
  entry: ["src/index.ts", "src/worker.ts"],
  esbuildOptions(options) {
    options.logOverride = { "empty-import-meta": "silent" };
  },
});
