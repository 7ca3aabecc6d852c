import { defineConfig } from "tsup";
import base from "../../tsup.config.base.js";

// The library entry as every package builds it, and the `persist-kit` program (ESM only, with a
// shebang). Neither cleans: the two builds run side by side, and `build` empties dist first.
export default defineConfig([
  { ...(base as object), clean: false },
  {
    entry: { bin: "src/bin.ts" },
    format: ["esm"],
    dts: false,
    clean: false,
    sourcemap: true,
    target: "node20",
    platform: "node",
    splitting: false,
    banner: { js: "#!/usr/bin/env node" },
  },
]);
