import { describe, expect, it } from "vitest";
import { escapeXml, niceCeiling, renderChart, seriesColors } from "../src/chart.js";
import {
  formatCompactRate,
  formatMicros,
  formatRatio,
  modeLabel,
  REPORT_END,
  REPORT_START,
  replaceReportSection,
} from "../src/report.js";

describe("replaceReportSection", () => {
  it("replaces only what lies between the markers, keeping them", () => {
    const readme = `# Title\n\nMethod.\n\n${REPORT_START}\nold report\n${REPORT_END}\n\nAfter.\n`;
    const updated = replaceReportSection(readme, "new report\n");
    expect(updated).toBe(`# Title\n\nMethod.\n\n${REPORT_START}\nnew report\n${REPORT_END}\n\nAfter.\n`);
    expect(replaceReportSection(updated, "new report")).toBe(updated);
  });

  it("refuses a README without both markers in order", () => {
    expect(() => replaceReportSection("no markers", "x")).toThrow(/report:start/);
    expect(() => replaceReportSection(`${REPORT_END}\n${REPORT_START}`, "x")).toThrow();
  });
});

describe("formatting", () => {
  it("prints microseconds, rates and ratios for tables", () => {
    expect(formatMicros(3.04)).toBe("3.0");
    expect(formatMicros(12_345.6)).toBe("12,346");
    expect(formatRatio(1.034)).toBe("1.03×");
    expect(formatRatio(undefined)).toBe("n/a");
    expect(formatCompactRate(950)).toBe("950");
    expect(formatCompactRate(2_345)).toBe("2.3k");
    expect(formatCompactRate(45_600)).toBe("46k");
    expect(formatCompactRate(1_250_000)).toBe("1.3M");
    expect(modeLabel("sequential")).toBe("one at a time");
    expect(modeLabel("in-flight-64")).toBe("64 in flight");
  });
});

describe("chart", () => {
  it("rounds the scale up to a readable number", () => {
    expect(niceCeiling(0)).toBe(1);
    expect(niceCeiling(1030)).toBe(1200);
    expect(niceCeiling(0.42)).toBeCloseTo(0.5);
    expect(niceCeiling(5000)).toBe(5000);
  });

  it("gives ours the strong colour and each other contender its own", () => {
    const colors = seriesColors([{ role: "ours" }, { role: "driver" }, { role: "driver" }, { role: "peer" }]);
    expect(new Set(colors).size).toBe(4);
    expect(colors[0]).toBe("#2563eb");
  });

  it("draws one bar per measured value, with escaped labels, as a standalone SVG", () => {
    const svg = renderChart({
      title: "Latency <quick>",
      subtitle: "µs",
      format: (value) => value.toFixed(0),
      panels: [
        {
          title: "redis & co",
          groups: ["write", "read", "delete"],
          series: [
            { name: "persist-redis", role: "ours", values: [10, 5, 7] },
            { name: "ioredis", role: "driver", values: [9, undefined, 6] },
          ],
        },
      ],
    });
    expect(svg.startsWith("<svg ")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(5);
    expect(svg).toContain("Latency &lt;quick&gt;");
    expect(svg).toContain("redis &amp; co");
    expect(svg).not.toContain("NaN");
    expect(escapeXml(`a"b'c`)).toBe("a&quot;b&apos;c");
  });
});
