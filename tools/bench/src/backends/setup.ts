import type { Family } from "../model.js";

/** What main hands every family builder. */
export interface FamilySetup {
  /** Unique to this run; part of every key prefix, table, collection and directory. */
  tag: string;
  /** Where the file contenders write (a temporary directory is made inside). */
  dataDir: string;
  passes: Family["passes"];
}
