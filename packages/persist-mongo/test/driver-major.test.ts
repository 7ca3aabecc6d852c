// This project runs on the mongodb major its config names, not on whichever one is installed first.
import { expect, it } from "vitest";

it("runs on the mongodb major this test project is configured for", async () => {
  const { version } = (await import("mongodb/package.json")).default as { version: string };
  expect(process.env.PERSIST_KIT_DRIVER_MAJOR).toMatch(/^[0-9]+$/);
  expect(version.split(".")[0]).toBe(process.env.PERSIST_KIT_DRIVER_MAJOR);
});
