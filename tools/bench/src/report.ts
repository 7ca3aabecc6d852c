// The markdown report and the charts' data, both computed from BenchResults alone, so the README
// can be regenerated from results/latest.json.
import type { Chart, ChartPanel } from "./chart.js";
import { FENCED_CONTENDERS, FENCED_PASSES_PER_FAMILY_PASS } from "./fenced.js";
import { type Mode, modeDepth, OPERATIONS, type Operation } from "./model.js";
import type { BackendName } from "./options.js";
import type { BenchResults, FamilyResult } from "./results.js";
import { median } from "./stats.js";
import { ratioAgainst, type Summary, type TargetResult } from "./targets.js";

/** Where the report goes in the README. */
export const REPORT_START = "<!-- report:start -->";
export const REPORT_END = "<!-- report:end -->";

/** `readme` with everything between the report markers replaced by `report`. */
export function replaceReportSection(readme: string, report: string): string {
  const start = readme.indexOf(REPORT_START);
  const end = readme.indexOf(REPORT_END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`the README needs ${REPORT_START} and ${REPORT_END}, in that order`);
  }
  return `${readme.slice(0, start + REPORT_START.length)}\n${report.trim()}\n${readme.slice(end)}`;
}

/** Microseconds: one decimal below 10, whole numbers with thousands separators above. */
export function formatMicros(value: number): string {
  if (value === 0) return "0";
  return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US");
}

/** Operations per second, whole, with thousands separators. */
export function formatRate(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** A ratio such as `1.03×`; `n/a` when there is none. */
export function formatRatio(value: number | undefined): string {
  return value === undefined ? "n/a" : `${value.toFixed(2)}×`;
}

/** "one at a time" or "16 in flight". */
export function modeLabel(mode: Mode): string {
  return mode === "sequential" ? "one at a time" : `${modeDepth(mode)} in flight`;
}

const BOUND_WORDS: Record<TargetResult["bound"], string> = { atMost: "≤", atLeast: "≥", below: "<" };

/** The whole report, as markdown. */
export function renderReport(results: BenchResults): string {
  const lines: string[] = [];
  const inFlightModes = results.counts.inFlight.map((depth) => `in-flight-${depth}`);
  lines.push(...headerLines(results));
  lines.push(...targetLines(results.targets));
  lines.push(...winLines(results));
  for (const family of results.families) lines.push(...familyLines(results, family, inFlightModes));
  lines.push(...fencedLines(results));
  lines.push(...backtestLines(results));
  lines.push(...versionLines(results));
  return lines.join("\n");
}

function headerLines(results: BenchResults): string[] {
  const { machine, counts } = results;
  const minutes = Math.floor(results.durationSeconds / 60);
  const seconds = Math.round(results.durationSeconds % 60);
  const lines = [`### Latest run: ${results.startedAt.slice(0, 16).replace("T", " ")} UTC`, ""];
  if (results.buildFailed) {
    lines.push(
      "> **Some packages failed to build** in this run: a backend may have been measured from an older build.",
      "",
    );
  }
  if (results.buildSkipped) {
    lines.push("> Packages were measured as they were already built (`--no-build`).", "");
  }
  if (results.quick) {
    lines.push(
      "> **Quick run** (`--quick`): tiny counts that only check the harness works. These numbers are not measurements.",
      "",
    );
  }
  lines.push(
    `${results.reps} rounds after a warm-up; ${counts.keys} keys, ${results.signalBytes}-byte rows; ` +
      `one at a time and ${counts.inFlight.join(" / ")} in flight; families: ${results.only.join(", ")}; ` +
      `took ${minutes} min ${seconds} s.`,
    "",
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.platform}, kernel ` +
      `${machine.kernel}, Node ${machine.node}; 1-minute load average ${machine.loadAverage.start} at the start, ` +
      `${machine.loadAverage.end ?? "?"} at the end.`,
    "",
    "![Median latency of one operation at a time, per family](results/latency.svg)",
    "",
    "![Throughput with the most operations in flight, per family](results/throughput.svg)",
    "",
  );
  return lines;
}

function targetLines(targets: readonly TargetResult[]): string[] {
  if (targets.length === 0) return [];
  const count = (status: TargetResult["status"]) => targets.filter((target) => target.status === status).length;
  const lines = [
    "#### Targets",
    "",
    `${count("met")} met, ${count("missed")} missed, ${count("not measured")} not measured. ` +
      "Each cell is ours ÷ the other contender (the median of the per-round ratios) and whether it keeps the limit.",
    "",
    `| family | target | against | mode | limit | ${OPERATIONS.join(" | ")} |`,
    `| --- | --- | --- | --- | ---: | ${OPERATIONS.map(() => "---").join(" | ")} |`,
  ];
  // One row per goal, contender and mode; the operations side by side.
  const rows = new Map<string, TargetResult[]>();
  for (const target of targets) {
    const id = [target.family, target.goal, target.against, target.mode].join("\u0000");
    rows.set(id, [...(rows.get(id) ?? []), target]);
  }
  for (const row of rows.values()) {
    const [first] = row as [TargetResult];
    const cells = OPERATIONS.map((operation) => {
      const target = row.find((entry) => entry.operation === operation);
      if (target === undefined) return "";
      const status = target.status === "missed" ? "**missed**" : target.status;
      return target.ratio === undefined ? status : `${formatRatio(target.ratio)} ${status}`;
    });
    lines.push(
      `| ${first.family} | ${first.goal} | ${first.against} | ${modeLabel(first.mode)} | ` +
        `${BOUND_WORDS[first.bound]} ${first.limit} | ${cells.join(" | ")} |`,
    );
  }
  lines.push("");
  return lines;
}

function winLines(results: BenchResults): string[] {
  const wins = results.inFlightWins;
  if (wins.length === 0) return [];
  const depths = results.counts.inFlight;
  const columns = depths.flatMap((depth) => OPERATIONS.map((operation) => ({ mode: `in-flight-${depth}`, operation })));
  const lines = [
    "#### Where another contender is faster with operations in flight",
    "",
    "Its operations per second ÷ ours, where above 1 (— where ours is as fast or faster).",
    "",
    `| family | contender | ${columns.map(({ mode, operation }) => `${operation}, ${modeDepth(mode)}`).join(" | ")} | why |`,
    `| --- | --- | ${columns.map(() => "---:").join(" | ")} | --- |`,
  ];
  const contenders = [...new Map(wins.map((win) => [`${win.family}\u0000${win.contender}`, win])).values()];
  for (const { family, contender, note } of contenders) {
    const cells = columns.map(({ mode, operation }) => {
      const win = wins.find(
        (entry) =>
          entry.family === family &&
          entry.contender === contender &&
          entry.mode === mode &&
          entry.operation === operation,
      );
      return win === undefined ? "—" : `${win.factor.toFixed(2)}×`;
    });
    lines.push(`| ${family} | ${contender} | ${cells.join(" | ")} | ${note ?? "no explanation recorded"} |`);
  }
  lines.push("");
  return lines;
}

function familyLines(results: BenchResults, family: FamilyResult, inFlightModes: readonly Mode[]): string[] {
  const lines = [`#### ${family.name}: ${family.description}`, ""];
  if (!family.available) return lines;
  const cell = (contender: string, mode: Mode, operation: Operation) =>
    results.summaries.find(
      (summary) =>
        summary.family === family.name &&
        summary.contender === contender &&
        summary.mode === mode &&
        summary.operation === operation,
    );
  const measured = family.contenders.filter((contender) => cell(contender.name, "sequential", "write") !== undefined);
  if (measured.length > 0) {
    const rounds = median(measured.map((contender) => cell(contender.name, "sequential", "write")?.rounds ?? 0));
    lines.push(`Latency of one operation at a time, µs (p50 / p99, median of ${rounds} rounds):`, "");
    lines.push(
      `| contender | role | ${OPERATIONS.map((operation) => `${operation} p50 | ${operation} p99`).join(" | ")} |`,
    );
    lines.push(`| --- | --- | ${OPERATIONS.map(() => "---: | ---:").join(" | ")} |`);
    for (const contender of measured) {
      const values = OPERATIONS.map((operation) => {
        const summary = cell(contender.name, "sequential", operation);
        return summary === undefined ? "n/a | n/a" : `${formatMicros(summary.p50Us)} | ${formatMicros(summary.p99Us)}`;
      });
      lines.push(`| ${nameCell(contender)} | ${contender.role} | ${values.join(" | ")} |`);
    }
    lines.push("", "Throughput, operations per second (median of the rounds):", "");
    const columns = inFlightModes.flatMap((mode) => OPERATIONS.map((operation) => ({ mode, operation })));
    lines.push(
      `| contender | ${columns.map(({ mode, operation }) => `${operation}, ${modeDepth(mode)}`).join(" | ")} |`,
    );
    lines.push(`| --- | ${columns.map(() => "---:").join(" | ")} |`);
    for (const contender of measured) {
      const values = columns.map(({ mode, operation }) => rate(cell(contender.name, mode, operation)));
      lines.push(`| ${nameCell(contender)} | ${values.join(" | ")} |`);
    }
    lines.push(...ratioLines(results, family, measured, inFlightModes));
  }
  if (family.unavailable.length > 0) {
    lines.push("", "Not available:", "");
    for (const entry of family.unavailable) lines.push(`- ${entry.name}: ${entry.reason}`);
  }
  lines.push("", "What each contender does:", "");
  for (const contender of family.contenders)
    lines.push(`- **${contender.name}** (${contender.role}): ${contender.description}`);
  lines.push("");
  return lines;
}

function ratioLines(
  results: BenchResults,
  family: FamilyResult,
  measured: FamilyResult["contenders"],
  inFlightModes: readonly Mode[],
): string[] {
  const ours = measured.find((contender) => contender.role === "ours");
  if (ours === undefined) return ["", "Our backend was not measured, so there are no ratios."];
  const others = measured.filter((contender) => contender !== ours);
  if (others.length === 0) return [];
  const ratio = (other: string, mode: Mode, operation: Operation, metric: "p50Us" | "opsPerSecond") =>
    formatRatio(ratioAgainst(results.measurements, family.name, ours.name, other, mode, operation, metric));
  const lines = [
    "",
    `Ours (${ours.name}) ÷ each other contender, median of the per-round ratios. Latency: below 1 means ours is ` +
      "faster; throughput: above 1 means ours is faster.",
    "",
    `| other | ${OPERATIONS.map((operation) => `${operation} latency`).join(" | ")} | ${inFlightModes
      .flatMap((mode) => OPERATIONS.map((operation) => `${operation} ops/s, ${modeDepth(mode)}`))
      .join(" | ")} |`,
    `| --- | ${[...OPERATIONS, ...inFlightModes.flatMap(() => OPERATIONS)].map(() => "---:").join(" | ")} |`,
  ];
  for (const other of others) {
    const latency = OPERATIONS.map((operation) => ratio(other.name, "sequential", operation, "p50Us"));
    const throughput = inFlightModes.flatMap((mode) =>
      OPERATIONS.map((operation) => ratio(other.name, mode, operation, "opsPerSecond")),
    );
    lines.push(`| ${other.name} | ${[...latency, ...throughput].join(" | ")} |`);
  }
  return lines;
}

function nameCell(contender: { name: string; role: string }): string {
  return contender.role === "ours" ? `**${contender.name}**` : contender.name;
}

function rate(summary: Summary | undefined): string {
  return summary === undefined ? "n/a" : formatRate(summary.opsPerSecond);
}

function fencedLines(results: BenchResults): string[] {
  const fenced = results.fenced;
  if (fenced === undefined) return [];
  const lines = ["#### Fenced writes against plain ones", ""];
  if (!fenced.available) return [...lines, `Not run: ${fenced.reason ?? "not selected"}.`, ""];
  const { plain, conditional, fenced: adapter, exclusive } = FENCED_CONTENDERS;
  const passes = fenced.backends
    .map(
      ({ name }) =>
        `${name} ${FENCED_PASSES_PER_FAMILY_PASS * (results.counts.passes[name as BackendName]?.sequential ?? 0)}`,
    )
    .join(", ");
  lines.push(
    "`PersistSignalAdapter.setPendingSignal`, every write fenced by revision (the default), against the backend's " +
      "plain `writeSignalData` of the same row, one call at a time, in the same rounds; each block writes every " +
      `key's row over the one stored, in passes over all keys (${passes}). ` +
      "Latency in µs, p50 / p99, median of the rounds; ratios to the plain write are medians of the per-round ratios.",
    "",
    `| backend | ${plain} | ${conditional} | ${adapter} | ${exclusive} | condition ÷ plain, p50 | fenced ÷ plain, p50 | fenced ÷ plain, p99 | exclusive ÷ plain, p50 | exclusive ÷ plain, p99 | target: fenced p50 ≤ 1.05× plain |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  );
  const unavailable: string[] = [];
  for (const backend of fenced.backends) {
    if (!backend.available) {
      lines.push(`| ${backend.name} | ${backend.description} | | | | | | | | | not measured |`);
      continue;
    }
    for (const entry of backend.unavailable) unavailable.push(`- ${backend.name}, ${entry.name}: ${entry.reason}`);
    const summary = (contender: string) =>
      fenced.summaries.find((entry) => entry.family === backend.name && entry.contender === contender);
    const latency = (contender: string) => {
      const found = summary(contender);
      return found === undefined ? "n/a" : `${formatMicros(found.p50Us)} / ${formatMicros(found.p99Us)}`;
    };
    const ratio = (contender: string, metric: "p50Us" | "p99Us") =>
      formatRatio(ratioAgainst(fenced.measurements, backend.name, contender, plain, "sequential", "write", metric));
    const target = results.targets.find(
      (entry) => entry.family === backend.name && entry.against === plain && entry.goal.startsWith("fenced"),
    );
    const status = target === undefined ? "not measured" : target.status === "missed" ? "**missed**" : target.status;
    lines.push(
      `| ${backend.name} | ${[plain, conditional, adapter, exclusive].map(latency).join(" | ")} | ` +
        `${ratio(conditional, "p50Us")} | ${ratio(adapter, "p50Us")} | ${ratio(adapter, "p99Us")} | ` +
        `${ratio(exclusive, "p50Us")} | ${ratio(exclusive, "p99Us")} | ${status} |`,
    );
  }
  if (unavailable.length > 0) lines.push("", "Not available:", "", ...unavailable);
  const described = fenced.backends.find((backend) => backend.available);
  if (described !== undefined) {
    lines.push("", "What each contender does, on every backend, each in its own namespace:", "");
    for (const contender of described.contenders) lines.push(`- **${contender.name}**: ${contender.description}`);
  }
  lines.push("");
  return lines;
}

function backtestLines(results: BenchResults): string[] {
  const { backtest, counts } = results;
  const lines = [
    `#### Backtest: ${counts.backtest.cycles.toLocaleString("en-US")} open/close cycles over ${counts.backtest.symbols} symbols`,
    "",
  ];
  if (!backtest.available) return [...lines, `Not run: ${backtest.reason ?? "not selected"}.`, ""];
  lines.push(
    "Each cycle is `setPendingSignal` then `deletePendingSignal` through PersistSignalAdapter; the symbols run side by side, each one's cycles in order.",
    "",
    "| backend | cycles per second (median) | cycles per round | rounds | what it is |",
    "| --- | ---: | ---: | ---: | --- |",
  );
  for (const result of backtest.results) {
    let value = result.cyclesPerSecond.length > 0 ? formatRate(median(result.cyclesPerSecond)) : "no result";
    if (result.failed !== undefined) value = `not available: ${result.failed}`;
    const cycles = result.cycles.toLocaleString("en-US");
    lines.push(`| ${result.name} | ${value} | ${cycles} | ${result.cyclesPerSecond.length} | ${result.description} |`);
  }
  lines.push("");
  return lines;
}

function versionLines(results: BenchResults): string[] {
  const lines = ["#### Versions", "", "Read from the installed package.json files at run time.", ""];
  lines.push("| package | used by | version |", "| --- | --- | --- |");
  for (const entry of results.versions) lines.push(`| ${entry.name} | ${entry.usedBy} | ${entry.version} |`);
  lines.push("", "Servers:", "");
  for (const family of results.families) lines.push(`- ${family.name}: ${family.description}`);
  lines.push("");
  return lines;
}

/** The two charts of a run: latency one at a time, and throughput at the deepest in-flight level. */
export function resultCharts(results: BenchResults): { latency: Chart; throughput: Chart } {
  const deepest = `in-flight-${Math.max(...results.counts.inFlight)}`;
  const quick = results.quick ? " (quick run: not a measurement)" : "";
  return {
    latency: {
      title: `Median latency, one operation at a time${quick}`,
      subtitle: `µs, lower is better; median of ${results.reps} rounds; ${results.signalBytes}-byte signals`,
      panels: familyPanels(results, "sequential", (summary) => summary.p50Us),
      format: formatMicros,
    },
    throughput: {
      title: `Throughput with ${modeDepth(deepest)} operations in flight${quick}`,
      subtitle: `operations per second, higher is better; median of ${results.reps} rounds`,
      panels: familyPanels(results, deepest, (summary) => summary.opsPerSecond),
      format: formatCompactRate,
    },
  };
}

function familyPanels(results: BenchResults, mode: Mode, metric: (summary: Summary) => number): ChartPanel[] {
  const panels: ChartPanel[] = [];
  for (const family of results.families) {
    const series = family.contenders
      .map((contender) => ({
        name: contender.name,
        role: contender.role,
        values: OPERATIONS.map((operation) => {
          const summary = results.summaries.find(
            (entry) =>
              entry.family === family.name &&
              entry.contender === contender.name &&
              entry.mode === mode &&
              entry.operation === operation,
          );
          return summary === undefined ? undefined : metric(summary);
        }),
      }))
      .filter((entry) => entry.values.some((value) => value !== undefined));
    if (series.length > 0)
      panels.push({ title: `${family.name}: ${family.description}`, groups: [...OPERATIONS], series });
  }
  return panels;
}

/** `12.3k`, `1.2M`: short enough to sit above a bar. */
export function formatCompactRate(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${Math.round(value / 1e3)}k`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return String(Math.round(value));
}
