// The memory family: core's PersistMemory against a bare Map with JSON, keyv's default in-memory
// store and unstorage's memory driver.
import { PersistMemory } from "@persist-kit/core";
import Keyv from "keyv";
import { createStorage } from "unstorage";
import type { Contender, Family } from "../model.js";
import { keyvStore, persistStore, unstorageStore } from "../stores.js";
import { PEER_GOALS } from "../targets.js";
import type { FamilySetup } from "./setup.js";

const IN_MEMORY_NOTE =
  "in memory nothing waits for I/O, so operations in flight change little: what differs is the cost of a call, " +
  "and persist-kit checks every key and row and stores a JSON copy";

/** The memory family: nothing to set up, nothing to clean. */
export async function memoryFamily(setup: FamilySetup): Promise<Family> {
  const contenders: Contender[] = [
    {
      name: "persist-kit memory",
      role: "ours",
      description: "PersistMemory from @persist-kit/core: validates, stores the JSON text, parses on read",
      open: async () => persistStore(new PersistMemory()),
    },
    {
      name: "Map + JSON",
      role: "floor",
      description: "a Map of JSON.stringify'd rows, JSON.parse on read: the least a copying store can do",
      open: async () => {
        const rows = new Map<string, string>();
        return {
          write: async (key, row) => {
            rows.set(key.id, JSON.stringify(row));
          },
          read: async (key) => {
            const text = rows.get(key.id);
            return text === undefined ? null : JSON.parse(text);
          },
          delete: async (key) => {
            rows.delete(key.id);
          },
          close: async () => rows.clear(),
        };
      },
    },
    {
      name: "keyv",
      role: "peer",
      description: "keyv with its default in-memory store",
      goals: PEER_GOALS,
      inFlightNote: IN_MEMORY_NOTE,
      open: async () => {
        const keyv = new Keyv();
        return keyvStore(keyv);
      },
    },
    {
      name: "unstorage memory",
      role: "peer",
      description: "unstorage with its default memory driver",
      goals: PEER_GOALS,
      inFlightNote: IN_MEMORY_NOTE,
      open: async () => {
        const storage = createStorage();
        return unstorageStore(storage);
      },
    },
  ];
  return {
    name: "memory",
    description: "in this process; no I/O",
    contenders,
    unavailable: [],
    passes: setup.passes,
    openBackend: async () => new PersistMemory(),
    close: async () => {},
  };
}
