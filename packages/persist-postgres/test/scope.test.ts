import { assertScopesIsolated } from "@persist-kit/contract";
import { createPersist } from "@persist-kit/core";
import { it } from "vitest";
import * as persistPostgres from "../src/index.js";
import { testDatabaseUrl } from "./postgres-test-env.js";

it("scopes on one PostgreSQL URL are kept apart, given as an option or as ?scope= in the URL", async () => {
  const url = await testDatabaseUrl();
  const withScope = (scope: string) => `${url}${url.includes("?") ? "&" : "?"}scope=${scope}`;
  await assertScopesIsolated((scope) => createPersist(url, { backends: [persistPostgres], scope }));
  await assertScopesIsolated((scope) =>
    createPersist(scope === undefined ? url : withScope(scope), { backends: [persistPostgres] }),
  );
});
