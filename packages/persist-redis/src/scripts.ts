import type { RecordCondition } from "@persist-kit/core";
import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "./connection.js";

/**
 * The server-side scripts of every write and delete. Each decides the condition, the new
 * revision and (for a delete) the new floor of the group in one atomic step: Redis runs a script
 * to its end before any other command, and the record key and its floor key share one hash slot,
 * so a Redis Cluster runs them on one node too.
 *
 * Every script answers `{code, value}`: code 1 applied (value: the revision now stored), 0 not
 * applied (value: the stored revision), -1 the record key holds something that is not a v1
 * record, -2 the floor key holds something that is not a whole number (writeMany: value is the
 * 1-based entry). Nothing is changed in the last two cases.
 */

/** A script and the name ioredis knows it by (`defineCommand`: EVALSHA, with EVAL after NOSCRIPT). */
export interface RecordScript {
  readonly name: string;
  readonly lua: string;
}

/** What a script answered: `[code, value]`, see the module comment. */
export type ScriptReply = [code: number, value: number];

/** The script reply code of a record key holding something else than a v1 record. */
export const CORRUPT_RECORD = -1;
/** The script reply code of a floor key holding something else than a whole number. */
export const CORRUPT_FLOOR = -2;

// A stored record's revision is read from its header without decoding the row; an absent key
// reports its group's floor. `revision_text` keeps large revisions out of Lua's %g notation.
const PRELUDE = `
local function read_floor(floor_key)
  local floor = redis.call('GET', floor_key)
  if floor == false then return 0 end
  if not string.match(floor, '^%d+$') then return nil end
  return tonumber(floor)
end
local function read_revision(record_key, floor_key)
  local stored = redis.call('GET', record_key)
  if stored == false then
    local floor = read_floor(floor_key)
    if floor == nil then return nil, ${CORRUPT_FLOOR} end
    return floor, false
  end
  local revision = string.match(stored, '^{"v":1,"revision":(%d+),"value":')
  if revision == nil then return nil, ${CORRUPT_RECORD} end
  return tonumber(revision), true
end
local function decide(current, kind, bound)
  if kind == 'revision' then return current == bound, current + 1 end
  if kind == 'below' then return current < bound, bound end
  return true, current + 1
end
local function revision_text(revision)
  return string.format('%.0f', revision)
end
local function store(record_key, revision, json, ttl_ms)
  local text = '{"v":1,"revision":' .. revision_text(revision) .. ',"value":' .. json .. '}'
  if ttl_ms == '' then
    redis.call('SET', record_key, text)
  else
    redis.call('SET', record_key, text, 'PX', ttl_ms)
  end
end
`;

/** KEYS: record, floor. ARGV: json, condition kind ("", "revision", "below"), bound, ttlMs ("" for none). */
export const WRITE_RECORD: RecordScript = {
  name: "persistKitWriteRecordV1",
  lua: `${PRELUDE}
local current, live = read_revision(KEYS[1], KEYS[2])
if current == nil then return {live, 0} end
local applies, next_revision = decide(current, ARGV[2], tonumber(ARGV[3]))
if not applies then return {0, current} end
store(KEYS[1], next_revision, ARGV[1], ARGV[4])
return {1, next_revision}
`,
};

/** KEYS: record, floor. ARGV: condition kind, bound. */
export const DELETE_RECORD: RecordScript = {
  name: "persistKitDeleteRecordV1",
  lua: `${PRELUDE}
local current, live = read_revision(KEYS[1], KEYS[2])
if current == nil then return {live, 0} end
if not live and ARGV[1] == '' then return {1, current} end
local applies, next_revision = decide(current, ARGV[1], tonumber(ARGV[2]))
if not applies then return {0, current} end
local floor = read_floor(KEYS[2])
if floor == nil then return {${CORRUPT_FLOOR}, 0} end
-- The floor first: should this SET be refused (out of memory), the record is still in place.
-- Raised, never lowered: another key of the group may have raised it further already, and the
-- deleted key reads the floor from now on.
if next_revision > floor then
  redis.call('SET', KEYS[2], revision_text(next_revision))
  floor = next_revision
end
if live then redis.call('DEL', KEYS[1]) end
return {1, floor}
`,
};

/** KEYS: record, floor of each entry. ARGV: ttlMs ("" for none), then the json of each entry. */
export const WRITE_MANY_RECORDS: RecordScript = {
  name: "persistKitWriteManyRecordsV1",
  lua: `${PRELUDE}
-- Every key is checked before the first write, so a corrupt one leaves the whole batch unwritten.
for index = 1, #KEYS, 2 do
  local current, code = read_revision(KEYS[index], KEYS[index + 1])
  if current == nil then return {code, (index + 1) / 2} end
end
for index = 1, #KEYS, 2 do
  local current = read_revision(KEYS[index], KEYS[index + 1])
  store(KEYS[index], current + 1, ARGV[(index + 1) / 2 + 1], ARGV[1])
end
return {1, 0}
`,
};

const SCRIPTS = [WRITE_RECORD, DELETE_RECORD, WRITE_MANY_RECORDS];
const defined = new WeakSet<RedisClient>();

type ScriptMethods = Record<string, (...args: (string | number)[]) => unknown>;

/** The script arguments of a condition: its kind and bound, both empty for none. */
export function conditionArguments(condition: RecordCondition | undefined): [string, string] {
  if (condition === undefined) return ["", ""];
  if ("below" in condition) return ["below", String(condition.below)];
  return ["revision", String(condition.revision)];
}

/** The script argument of a TTL: the milliseconds, empty for none. */
export function ttlArgument(ttlMs: number | undefined): string {
  return ttlMs === undefined ? "" : String(ttlMs);
}

/** Runs a script by its SHA (ioredis loads it on first use on each connection and after NOSCRIPT). */
export function runScript(
  client: RedisClient,
  script: RecordScript,
  keys: readonly string[],
  args: readonly string[],
): Promise<ScriptReply> {
  defineScripts(client);
  const method = (client as unknown as ScriptMethods)[script.name] as (
    ...args: (string | number)[]
  ) => Promise<ScriptReply>;
  return method.call(client, keys.length, ...keys, ...args);
}

/** Adds a script call by its SHA to a pipeline made by {@link scriptPipeline}. */
export function queueScript(
  pipeline: ChainableCommander,
  script: RecordScript,
  keys: readonly string[],
  args: readonly string[],
): void {
  (pipeline as unknown as ScriptMethods)[script.name]?.call(pipeline, keys.length, ...keys, ...args);
}

/** A pipeline on which the scripts can be queued by name. */
export function scriptPipeline(client: RedisClient): ChainableCommander {
  defineScripts(client);
  return client.pipeline();
}

function defineScripts(client: RedisClient): void {
  if (defined.has(client)) return;
  for (const { name, lua } of SCRIPTS) client.defineCommand(name, { lua });
  defined.add(client);
}
