import { assertScopesIsolated, makeSignalRow } from "@persist-kit/contract";
import { createPersist } from "@persist-kit/core";
import { getRedisUrl } from "@persist-kit/tools-test-servers";
import { Redis } from "ioredis";
import { expect, it } from "vitest";
import * as persistRedis from "../src/index.js";

it("scopes on one Redis URL are kept apart, given as an option or as ?scope= in the URL", async () => {
  const url = await getRedisUrl();
  const strategyPrefix = `scopes-${process.pid}-${Date.now()}`;
  await assertScopesIsolated((scope) => createPersist(url, { backends: [persistRedis], scope }), strategyPrefix);
  await assertScopesIsolated((scope) =>
    createPersist(scope === undefined ? url : `${url}?scope=${scope}`, { backends: [persistRedis] }),
  );
  // Scopes named like a namespace or the floor keys' word are no keys of the unscoped store.
  await assertScopesIsolated(
    (scope) => createPersist(url, { backends: [persistRedis], scope }),
    `${strategyPrefix}-n`,
    ["signal", "floor"],
  );
  // A scope is one more segment of the key prefix.
  const redis = new Redis(url);
  try {
    await createPersist(url, { backends: [persistRedis], scope: "a" }).then(async (persist) => {
      await persist.writeSignalData("BTC/USDT", `${strategyPrefix}-raw`, makeSignalRow(1));
      await persist.close?.();
    });
    const keys = await redis.keys(`persist-kit:@a:*${strategyPrefix}-raw*`);
    expect(keys).toHaveLength(1);
    await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
});
