import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "crash-recovery",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
  },
});
