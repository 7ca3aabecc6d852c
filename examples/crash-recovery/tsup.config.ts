import { defineConfig } from "tsup";

// ESM only: the supervisor starts dist/bot.js as a separate process.
export default defineConfig({
  entry: ["src/index.ts", "src/cli.ts", "src/bot.ts"],
  format: ["esm"],
  dts: { entry: "src/index.ts" },
  clean: true,
  sourcemap: true,
  target: "node20",
  platform: "node",
});
