// The same tests on the other supported driver major: every import of "mongodb", in src and in
// the tests, resolves to mongodb 7 (installed under the alias "mongodb-7").
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { defineProject } from "vitest/config";

const mongodb7 = dirname(createRequire(import.meta.url).resolve("mongodb-7/package.json"));

export default defineProject({
  resolve: { alias: [{ find: /^mongodb(?=\/|$)/, replacement: mongodb7 }] },
  test: {
    name: "persist-mongo (mongodb 7)",
    env: { PERSIST_KIT_DRIVER_MAJOR: "7" },
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
