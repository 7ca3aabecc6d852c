import { getRedisClusterNodes } from "@persist-kit/tools-test-servers";
import { Cluster } from "ioredis";
import { runRedisContract } from "./redis-contract.js";

runRedisContract({
  name: "redis (cluster, three masters)",
  async connect() {
    const clusterNodes = await getRedisClusterNodes();
    return { target: { clusterNodes }, raw: new Cluster(clusterNodes) };
  },
  unreachable: (port) => ({ clusterNodes: [{ host: "127.0.0.1", port }] }),
  killTrials: 50,
});
