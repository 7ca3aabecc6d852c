import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "persist-redis",
    env: { PERSIST_KIT_DRIVER_MAJOR: "5" },
    include: ["test/**/*.test.ts"],
    // Real servers, child processes and server restarts: far slower than unit tests.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
