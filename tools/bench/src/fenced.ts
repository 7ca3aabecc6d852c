// The fenced measurement: PersistSignalAdapter.setPendingSignal (every write fenced by revision,
// the default) against the backend's plain writeSignalData of the same row, per backend, in the
// same run and interleaved like a family; with the store's conditional write alone and with an
// exclusive adapter beside them, to tell where the difference goes.
import type { FamilySetup } from "./backends/setup.js";
import type { Family, Measurement } from "./model.js";
import type { FamilyResult } from "./results.js";
import { reasonOf, runFamily, type Workload } from "./runner.js";
import { adapterStore, conditionalStore, NotAvailableError, persistStore } from "./stores.js";
import { FENCED_GOALS, type Summary, summarize } from "./targets.js";

/** The contenders of every backend, by what they are. */
export const FENCED_CONTENDERS = {
  plain: "plain writeSignalData",
  conditional: "writeSignalIf, no adapter",
  fenced: "fenced setPendingSignal",
  exclusive: "exclusive setPendingSignal",
} as const;

/** What the fenced measurement produced, next to the families in the results. */
export interface FencedResults {
  available: boolean;
  reason?: string;
  /** One per backend: its server line, its contenders, what could not run. */
  backends: FamilyResult[];
  summaries: Summary[];
  measurements: Measurement[];
}

/**
 * A block of a family runs write, read and delete per pass; this one only writes, so it runs
 * three passes for each of the family's, and lasts about as long.
 */
export const FENCED_PASSES_PER_FAMILY_PASS = 3;

/**
 * The family's own backend as four contenders, each in its own namespace: the plain write (the
 * floor), the store's conditional write by hand, the adapter's fenced write (ours) and the
 * exclusive adapter's. Writes only, one at a time: every key's row is written over itself.
 */
export function fencedFamily(family: Family): Family {
  const open = family.openBackend;
  if (open === undefined) throw new NotAvailableError(`the ${family.name} family does not open its backend by name`);
  return {
    name: family.name,
    description: family.description,
    contenders: [
      {
        name: FENCED_CONTENDERS.plain,
        role: "floor",
        description: "persist.writeSignalData(symbol, strategyName, row): the backend's unconditional write",
        goals: FENCED_GOALS,
        open: async () => persistStore(await open("fenced_plain")),
      },
      {
        name: FENCED_CONTENDERS.conditional,
        role: "driver",
        description:
          "persist.writeSignalIf(symbol, strategyName, row, { below: R + 1 }) by hand, R the revision it last saw: " +
          "the condition the adapter sends, decided by the store, without the adapter",
        open: async () => conditionalStore(await open("fenced_conditional")),
      },
      {
        name: FENCED_CONTENDERS.fenced,
        role: "ours",
        description:
          "new PersistSignalAdapter(persist).setPendingSignal(symbol, strategyName, row): row checked and copied, " +
          "queued per key, a deadline per call (timeoutMs 10000), writeSignalIf above the highest revision seen",
        open: async () => adapterStore(await open("fenced_adapter")),
      },
      {
        name: FENCED_CONTENDERS.exclusive,
        role: "peer",
        description:
          "new PersistSignalAdapter(persist, { exclusive: true }).setPendingSignal(...): the same, and the key's " +
          "lease checked per call; the leases of every key (30000 ms) are renewed every 10 s in the background",
        open: async () => adapterStore(await open("fenced_exclusive"), { exclusive: true }),
      },
    ],
    unavailable: [],
    passes: { sequential: family.passes.sequential * FENCED_PASSES_PER_FAMILY_PASS, inFlight: 0 },
    operations: ["write"],
    sequentialOnly: true,
    close: () => family.close(),
  };
}

/**
 * Runs the fenced measurement on each backend in `names`, building each backend's family with
 * `build` (for its server and its backend, not its other contenders). A backend that cannot be
 * set up is reported, not fatal, as in the families.
 */
export async function runFenced(
  names: readonly string[],
  build: (name: string, setup: FamilySetup) => Promise<Family>,
  setupOf: (name: string) => FamilySetup,
  workload: Workload,
  log: (line: string) => void,
): Promise<FencedResults> {
  const backends: FamilyResult[] = [];
  const measurements: Measurement[] = [];
  const fencedLog = (line: string) => log(`[fenced] ${line}`);
  for (const name of names) {
    let family: Family;
    try {
      family = fencedFamily(await build(name, setupOf(name)));
    } catch (error) {
      fencedLog(`[${name}] not available: ${reasonOf(error)}`);
      const description = `not available: ${reasonOf(error)}`;
      backends.push({ name, description, available: false, contenders: [], unavailable: [] });
      continue;
    }
    try {
      const run = await runFamily(family, workload, fencedLog);
      for (const entry of run.failed) fencedLog(`[${name}] not available: ${entry.name}: ${entry.reason}`);
      const contenders = family.contenders.map(({ name, role, description, goals }) => ({
        name,
        role,
        description,
        ...(goals === undefined ? {} : { goals }),
      }));
      backends.push({ name, description: family.description, available: true, contenders, unavailable: run.failed });
      measurements.push(...run.measurements);
    } finally {
      await family.close().catch((error: unknown) => fencedLog(`[${name}] cleaning up failed: ${reasonOf(error)}`));
    }
  }
  return { available: true, backends, summaries: summarize(measurements), measurements };
}
