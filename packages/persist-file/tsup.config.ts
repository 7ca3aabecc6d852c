import { defineConfig } from "tsup";
import base from "../../tsup.config.base.js";

// The I/O thread runs as its own ES module (dist/io-worker.js), started by both builds. The ESM
// build finds it through import.meta.url; the CommonJS build, whose import.meta is empty (so the
// warning is expected), through its own __filename (see src/io-pool.ts).
export default defineConfig({
  ...(base as object),
  entry: ["src/index.ts", "src/io-worker.ts"],
  esbuildOptions(options) {
    options.logOverride = { "empty-import-meta": "silent" };
  },
});
