import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "persist-mongo",
    env: { PERSIST_KIT_DRIVER_MAJOR: "6" },
    include: ["test/**/*.test.ts"],
    // Real-server tests: a private FerretDB is started, killed and restarted, and operations are
    // left to time out against it.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
