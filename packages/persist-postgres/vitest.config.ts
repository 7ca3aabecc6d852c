import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "persist-postgres",
    include: ["test/**/*.test.ts"],
    // Real servers, child processes and a private PostgreSQL started from scratch.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
