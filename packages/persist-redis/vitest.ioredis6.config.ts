// The same tests on the other supported ioredis major: every import of "ioredis", in src and in
// the tests, resolves to ioredis 6 (installed under the alias "ioredis-6").
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { defineProject } from "vitest/config";

const ioredis6 = dirname(createRequire(import.meta.url).resolve("ioredis-6/package.json"));

export default defineProject({
  resolve: { alias: [{ find: /^ioredis(?=\/|$)/, replacement: ioredis6 }] },
  test: {
    name: "persist-redis (ioredis 6)",
    env: { PERSIST_KIT_DRIVER_MAJOR: "6" },
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
