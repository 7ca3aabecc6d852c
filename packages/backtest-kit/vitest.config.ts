import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "backtest-kit",
    include: ["test/**/*.test.ts"],
    // Real-server tests, and child processes killed mid-write.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
