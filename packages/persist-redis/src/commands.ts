import { decodeStoredText, type ISignalRow, type PersistErrorContext, parseSignalRow } from "@persist-kit/core";
import type { ChainableCommander } from "ioredis";
import type { RedisClient, RedisConnection } from "./connection.js";
import { checkWaitReply, type WaitCommand } from "./durability.js";

/** One change to one Redis key: store `text`, or delete the key when `text` is `null`. */
export interface SignalWrite {
  redisKey: string;
  text: string | null;
}

/** How {@link sendWrites} sends its changes. */
export interface SendOptions {
  /** Expiry of stored rows, from core's `ttlMs`; `undefined` for none. */
  ttlMs: number | undefined;
  /** Wraps the changes in MULTI/EXEC: all of them or none. */
  atomic: boolean;
  /** Sent after the changes; its reply is checked. */
  wait: WaitCommand | undefined;
}

/**
 * Sends the changes, and the wait after them, as one pipeline: the wait then runs on the
 * connection (and, in a cluster, the node) that took the changes, which `WAIT` requires. Each
 * change is one SET (with PX when rows expire) or DEL. Rejects with the first error reply.
 */
export async function sendWrites(
  client: RedisClient,
  writes: readonly SignalWrite[],
  options: SendOptions,
  context: PersistErrorContext,
): Promise<void> {
  const pipeline = client.pipeline();
  if (options.atomic) pipeline.call("multi");
  for (const { redisKey, text } of writes) addWrite(pipeline, redisKey, text, options.ttlMs);
  if (options.atomic) pipeline.call("exec");
  if (options.wait !== undefined) pipeline.call(options.wait.name, ...options.wait.args);
  const replies = (await pipeline.exec()) ?? [];
  for (const [error, reply] of replies) {
    if (error) throw error;
    // EXEC's reply lists each command's outcome; a failed one is an error in that list.
    if (Array.isArray(reply)) {
      const failed = reply.find((item) => item instanceof Error);
      if (failed) throw failed;
    }
  }
  if (options.wait !== undefined) checkWaitReply(replies.at(-1)?.[1], options.wait, context);
}

/** One change on its own: one SET (with PX when rows expire) or DEL, without a pipeline. */
export function sendWrite(
  client: RedisClient,
  { redisKey, text }: SignalWrite,
  ttlMs: number | undefined,
): Promise<unknown> {
  if (text === null) return client.del(redisKey);
  if (ttlMs === undefined) return client.set(redisKey, text);
  return client.set(redisKey, text, "PX", ttlMs);
}

function addWrite(pipeline: ChainableCommander, redisKey: string, text: string | null, ttlMs: number | undefined) {
  if (text === null) pipeline.del(redisKey);
  else if (ttlMs === undefined) pipeline.set(redisKey, text);
  else pipeline.set(redisKey, text, "PX", ttlMs);
}

/**
 * Reads one signal with GET. Only a missing key is `null`: an empty string is stored data (and
 * corrupt), and bytes that are not UTF-8 are corrupt rather than replaced.
 */
export async function readSignal(
  connection: RedisConnection,
  context: PersistErrorContext,
  redisKey: string,
): Promise<ISignalRow | null> {
  const stored = await connection.run(context, (client) => client.getBuffer(redisKey), { redisKey });
  if (stored === null) return null;
  const text = decodeStoredText(stored, context, `redis key ${redisKey}`);
  return parseSignalRow(text, context, `redis key ${redisKey}`);
}
