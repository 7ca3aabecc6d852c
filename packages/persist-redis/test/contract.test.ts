import { getRedisUrl } from "@persist-kit/tools-test-servers";
import { Redis } from "ioredis";
import { runRedisContract } from "./redis-contract.js";

runRedisContract({
  name: "redis (single server)",
  async connect() {
    const url = await getRedisUrl();
    return { target: { url }, raw: new Redis(url) };
  },
  unreachable: (port) => ({ url: `redis://127.0.0.1:${port}` }),
  killTrials: 100,
});
