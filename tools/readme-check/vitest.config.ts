import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "readme-check",
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
