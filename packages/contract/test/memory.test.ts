import { PersistMemory } from "@persist-kit/core";
import { afterAll, beforeAll, describe, it } from "vitest";
import { runPersistContract } from "../src/index.js";

runPersistContract(
  { describe, it, beforeAll, afterAll },
  {
    name: "memory",
    create: ({ ttlMs }) => new PersistMemory({ ttlMs }),
    ttl: true,
  },
);
