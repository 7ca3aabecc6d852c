import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { assertScopesIsolated } from "@persist-kit/contract";
import { createPersist } from "@persist-kit/core";
import * as persistFile from "@persist-kit/persist-file";
import { afterAll, beforeAll, expect, it } from "vitest";

let root = "";
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-scope-"));
});
afterAll(() => rm(root, { recursive: true, force: true }));

it("scopes on one file: URL are kept apart, given as an option or as ?scope= in the URL", async () => {
  const url = `file:${path.join(root, "store")}`;
  await assertScopesIsolated((scope) => createPersist(url, { backends: [persistFile], scope }));
  await assertScopesIsolated((scope) =>
    createPersist(scope === undefined ? url : `${url}?scope=${scope}`, { backends: [persistFile] }),
  );
  // Each scope is a directory beside the store, never inside it.
  expect((await readdir(root)).sort()).toEqual(["store", "store.a", "store.b"]);
});
