import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "persist-file",
    include: ["test/**/*.test.ts"],
  },
});
