import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "cli",
    include: ["test/**/*.test.ts"],
    // Real servers, child processes killed mid-migration.
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
