import { defineConfig } from "tsup";

// Every package builds the same way: ESM and CommonJS side by side, each with its own types,
// so `import` and `require` both resolve through the package's `exports` map.
export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
  platform: "node",
  splitting: false,
});
