import { type CliIo, EXIT, line } from "../io.js";
import { type OpenedStore, withStore } from "../store.js";
import { resolveUrl, shownUrl } from "../url.js";

export const DOCTOR_HELP = `Usage: persist-kit doctor [url] [--strict] [--json]

Checks whether the store keeps every acknowledged write through a crash: the server's settings
(Redis appendonly and appendfsync; PostgreSQL fsync, synchronous_commit, full_page_writes;
MongoDB write concern and journaling) or the file system under a file store (tmpfs, network and
overlay file systems, permissions, free space), then measures the round trip of a ping.
Exit status 1 when a setting can lose acknowledged writes; a setting the server cannot report
(FerretDB ignores write concerns) is shown as unknown, and fails only with --strict.
  --strict  unknown counts as a finding
  --json    the report as one JSON object`;

export interface DoctorOptions {
  url: string | undefined;
  strict: boolean;
  json: boolean;
}

/** `ok`: keeps acknowledged writes; `loses-writes`: a setting can lose them; `unknown`: the store cannot say. */
export type Verdict = "ok" | "unknown" | "loses-writes";

interface Report {
  crashSafe: boolean;
  warnings: string[];
  known?: boolean;
  kind?: string;
  writable?: boolean;
  servers?: { product?: string; role?: string }[];
}

const PINGS = 10;

export async function doctor(options: DoctorOptions, io: CliIo): Promise<number> {
  const url = resolveUrl(options.url, io);
  return withStore(url, async (store) => {
    const report = await durability(store);
    const verdict = judge(store, report);
    const latency = await pingTimes(store);
    const result = {
      store: shownUrl(url),
      backend: store.records.name,
      verdict,
      warnings: report?.warnings ?? ["the backend has no durability report"],
      pingMs: latency,
      report,
    };
    if (options.json) line(io.stdout, JSON.stringify(result));
    else {
      line(io.stdout, `store       ${result.store} (${result.backend})`);
      line(io.stdout, `durability  ${describe(verdict)}`);
      for (const warning of result.warnings) line(io.stdout, `  - ${warning}`);
      line(
        io.stdout,
        `latency     ping p50 ${latency.p50.toFixed(2)} ms, max ${latency.max.toFixed(2)} ms (${PINGS} pings)`,
      );
    }
    if (verdict === "loses-writes") return EXIT.finding;
    if (verdict === "unknown" && options.strict) return EXIT.finding;
    return EXIT.ok;
  });
}

async function durability(store: OpenedStore): Promise<Report | undefined> {
  const describeDurability = store.persist.describeDurability;
  if (typeof describeDurability !== "function") return undefined;
  return (await describeDurability.call(store.persist)) as Report;
}

function judge(store: OpenedStore, report: Report | undefined): Verdict {
  if (report === undefined) return store.records.capabilities.durable ? "unknown" : "loses-writes";
  // A file store this user cannot write loses every write, whatever the file system.
  if (report.writable === false) return "loses-writes";
  // A network file system: whether an fsync reaches a disk is up to the server.
  if (report.crashSafe) return report.kind === "network" ? "unknown" : "ok";
  // A file store whose mount table could not be read; FerretDB and mongos, which do not say what
  // a write concern does: the report cannot be told apart from a bad setting, so it is unknown.
  if (report.known === false) return "unknown";
  const servers = report.servers ?? [];
  if (servers.length > 0 && servers.every((server) => server.product === "ferretdb" || server.role === "mongos")) {
    return "unknown";
  }
  return "loses-writes";
}

function describe(verdict: Verdict): string {
  if (verdict === "ok") return "ok: every acknowledged write survives a crash of the process and of the machine";
  if (verdict === "unknown") return "unknown: the store cannot report whether acknowledged writes survive a crash";
  return "LOSES WRITES: a crash can lose acknowledged writes";
}

async function pingTimes(store: OpenedStore): Promise<{ p50: number; max: number }> {
  const times: number[] = [];
  for (let ping = 0; ping < PINGS; ping++) {
    const started = performance.now();
    await store.records.ping();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(PINGS / 2)] ?? 0, max: times.at(-1) ?? 0 };
}
