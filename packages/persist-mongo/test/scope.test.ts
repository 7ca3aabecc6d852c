import { assertScopesIsolated } from "@persist-kit/contract";
import { createPersist } from "@persist-kit/core";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import { it } from "vitest";
import * as persistMongo from "../src/index.js";

it("scopes on one MongoDB URL are kept apart, given as an option or as ?scope= in the URL", async () => {
  const url = await getMongoUrl();
  const withScope = (scope: string) => `${url}${url.includes("?") ? "&" : "?"}scope=${scope}`;
  await assertScopesIsolated((scope) => createPersist(url, { backends: [persistMongo], scope }));
  await assertScopesIsolated((scope) =>
    createPersist(scope === undefined ? url : withScope(scope), { backends: [persistMongo] }),
  );
});
