import type { RecordCondition } from "@persist-kit/core";
import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "./connection.js";
import { MAX_STORED_REVISION } from "./stored-record.js";

/**
 * The server-side scripts of every write and delete. Each decides the condition, the new
 * revision and (for a delete) the new floor of the group in one atomic step: Redis runs a script
 * to its end before any other command, and the record key and its floor key share one hash slot,
 * so a Redis Cluster runs them on one node too.
 *
 * Every change script answers `{code, value}`: code 1 applied (value: the revision now stored), 0
 * not applied (value: the stored revision), -1 the record key holds something that is not a v1
 * record, -2 the floor key holds something that is not a whole number, -3 (-4) the record (floor)
 * key holds the highest revision a key may hold, so the change has no exact revision to store
 * (writeMany: value is the 1-based entry). Nothing is changed in the last four cases.
 *
 * A revision is taken from a record or floor key under the rule of stored-record.ts: 1 to 16
 * digits and at most 2^53 - 1; anything else is corrupt. Lua numbers are doubles, so a longer
 * one would come out rounded (and its reply wrapped around as a 64-bit integer).
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
/** The script reply code of a record key holding the highest revision: no change can follow it. */
export const RECORD_AT_MAX_REVISION = -3;
/** The script reply code of a floor key holding the highest revision: no change can follow it. */
export const FLOOR_AT_MAX_REVISION = -4;

// A stored record's revision is read from its header without decoding the row; an absent key
// reports its group's floor. `revision_text` keeps large revisions out of Lua's %g notation.
// `parse_revision` is the rule of stored-record.ts (1 to 16 digits, at most MAX_REVISION): 16
// digits convert to the nearest double, which is above MAX_REVISION whenever the digits are.
const PRELUDE = `
local MAX_REVISION = ${MAX_STORED_REVISION}
local function parse_revision(digits)
  if digits == nil or #digits > 16 then return nil end
  local revision = tonumber(digits)
  if revision == nil or revision > MAX_REVISION then return nil end
  return revision
end
local function read_floor(floor_key)
  local floor = redis.call('GET', floor_key)
  if floor == false then return 0 end
  return parse_revision(string.match(floor, '^(%d+)$'))
end
local function read_revision(record_key, floor_key)
  local stored = redis.call('GET', record_key)
  if stored == false then
    local floor = read_floor(floor_key)
    if floor == nil then return nil, ${CORRUPT_FLOOR} end
    return floor, false
  end
  local revision = parse_revision(string.match(stored, '^{"v":1,"revision":(%d+),"value":'))
  if revision == nil or string.sub(stored, -1) ~= '}' then return nil, ${CORRUPT_RECORD} end
  return revision, true
end
local function at_max_revision(live)
  if live then return ${RECORD_AT_MAX_REVISION} end
  return ${FLOOR_AT_MAX_REVISION}
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
if next_revision > MAX_REVISION then return {at_max_revision(live), 0} end
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
if next_revision > MAX_REVISION then return {at_max_revision(live), 0} end
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
-- Every key is checked before the first write, so a corrupt one leaves the whole batch unwritten;
-- a key given twice takes two revisions.
local next_of = {}
for index = 1, #KEYS, 2 do
  local current, live = read_revision(KEYS[index], KEYS[index + 1])
  if current == nil then return {live, (index + 1) / 2} end
  local earlier = next_of[KEYS[index]]
  if earlier ~= nil then current, live = earlier, true end
  if current + 1 > MAX_REVISION then return {at_max_revision(live), (index + 1) / 2} end
  next_of[KEYS[index]] = current + 1
end
for index = 1, #KEYS, 2 do
  local current = read_revision(KEYS[index], KEYS[index + 1])
  store(KEYS[index], current + 1, ARGV[(index + 1) / 2 + 1], ARGV[1])
end
return {1, 0}
`,
};

/**
 * The read of a key found absent by a GET: `{1, record}` when it is there by now, else `{0, floor}`
 * (`{0}` without a floor), `{-2}` when the floor key holds another type than a string (MGET would
 * answer nil for it, as for no floor). One atomic step, so a floor raised after the key was
 * written (another key's delete) is never reported for it. Writes nothing. KEYS: record, floor.
 */
export const READ_ABSENT_RECORD: RecordScript = {
  name: "persistKitReadAbsentRecordV1",
  lua: `
local stored = redis.call('GET', KEYS[1])
if stored ~= false then return {1, stored} end
local floor = redis.pcall('GET', KEYS[2])
if type(floor) == 'table' then return {${CORRUPT_FLOOR}} end
if floor == false then return {0} end
return {0, floor}
`,
};

/** What {@link READ_ABSENT_RECORD} answered, its strings as bytes. */
export type ReadAbsentReply = [code: number, stored?: Buffer];

const SCRIPTS = [WRITE_RECORD, DELETE_RECORD, WRITE_MANY_RECORDS, READ_ABSENT_RECORD];
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

/** Runs {@link READ_ABSENT_RECORD} by its SHA, its bulk replies as bytes (strictly decoded by the caller). */
export function readAbsentRecord(client: RedisClient, recordKey: string, floorKey: string): Promise<ReadAbsentReply> {
  defineScripts(client);
  const method = (client as unknown as ScriptMethods)[`${READ_ABSENT_RECORD.name}Buffer`] as (
    ...args: (string | number)[]
  ) => Promise<ReadAbsentReply>;
  return method.call(client, 2, recordKey, floorKey);
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
