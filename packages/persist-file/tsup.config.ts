import { defineConfig } from "tsup";
import base from "../../tsup.config.base.js";

// The I/O thread runs as its own ES module (dist/io-worker.js), started by both builds. The
// CommonJS build finds it through __filename, so its empty import.meta is expected.
export default defineConfig({
  ...(base as object),
  entry: ["src/index.ts", "src/io-worker.ts"],
  esbuildOptions(options) {
    options.logOverride = { "empty-import-meta": "silent" };
  },
});
