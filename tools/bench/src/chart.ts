// Grouped bar charts as plain SVG text: one panel per family, one group per operation, one bar
// per contender. Every size is computed here, so no browser or font metrics are needed.
import type { Role } from "./model.js";

/** One bar series: a contender's value for each group (undefined: not measured). */
export interface ChartSeries {
  name: string;
  role: Role;
  values: (number | undefined)[];
}

/** One panel of the chart, with its own scale. */
export interface ChartPanel {
  title: string;
  groups: string[];
  series: ChartSeries[];
}

/** A chart: a title, a unit line and panels stacked top to bottom. */
export interface Chart {
  title: string;
  subtitle: string;
  panels: ChartPanel[];
  /** How a value is printed above its bar. */
  format: (value: number) => string;
}

const WIDTH = 960;
const MARGIN = 24;
const AXIS_WIDTH = 64;
const PANEL_TITLE_HEIGHT = 26;
const LEGEND_ROW_HEIGHT = 18;
const PLOT_HEIGHT = 190;
const GROUP_LABEL_HEIGHT = 22;
const PANEL_GAP = 28;
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
// Ours is the one strong colour; drivers and floors are greys, peers warm colours.
const ROLE_COLORS: Record<Role, string[]> = {
  ours: ["#2563eb"],
  driver: ["#374151", "#a3a3a3", "#78716c", "#cbd5e1"],
  floor: ["#111827"],
  peer: ["#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#ec4899"],
};

/** The colour of each series of a panel, by role and order within the role. */
export function seriesColors(series: readonly Pick<ChartSeries, "role">[]): string[] {
  const used: Record<Role, number> = { ours: 0, driver: 0, floor: 0, peer: 0 };
  return series.map(({ role }) => {
    const palette = ROLE_COLORS[role];
    return palette[used[role]++ % palette.length] as string;
  });
}

/** The chart as a standalone SVG document. */
export function renderChart(chart: Chart): string {
  const parts: string[] = [];
  let y = MARGIN;
  parts.push(text(MARGIN, y + 16, chart.title, { size: 18, weight: "600" }));
  parts.push(text(MARGIN, y + 36, chart.subtitle, { size: 12, fill: "#4b5563" }));
  y += 52;
  for (const panel of chart.panels) {
    const { svg, height } = renderPanel(panel, y, chart.format);
    parts.push(svg);
    y += height + PANEL_GAP;
  }
  const height = y - PANEL_GAP + MARGIN;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${FONT}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

function renderPanel(panel: ChartPanel, top: number, format: (value: number) => string) {
  const parts: string[] = [];
  const colors = seriesColors(panel.series);
  parts.push(text(MARGIN, top + 16, panel.title, { size: 14, weight: "600" }));
  const legend = legendRows(panel.series, colors, top + PANEL_TITLE_HEIGHT);
  parts.push(legend.svg);
  const plotTop = top + PANEL_TITLE_HEIGHT + legend.height + 18;
  const plotLeft = MARGIN + AXIS_WIDTH;
  const plotWidth = WIDTH - plotLeft - MARGIN;
  const values = panel.series.flatMap((series) => series.values).filter((value) => value !== undefined);
  const scaleMax = niceCeiling(Math.max(0, ...values) * 1.12);
  const yOf = (value: number) => plotTop + PLOT_HEIGHT - (value / scaleMax) * PLOT_HEIGHT;
  for (const tick of [0, 0.25, 0.5, 0.75, 1].map((share) => share * scaleMax)) {
    const tickY = round(yOf(tick));
    parts.push(`<line x1="${plotLeft}" y1="${tickY}" x2="${plotLeft + plotWidth}" y2="${tickY}" stroke="#e5e7eb"/>`);
    parts.push(text(plotLeft - 6, tickY + 4, format(tick), { size: 10, fill: "#6b7280", anchor: "end" }));
  }
  const groupWidth = plotWidth / Math.max(1, panel.groups.length);
  const barWidth = Math.min(48, (groupWidth * 0.8) / Math.max(1, panel.series.length));
  panel.groups.forEach((group, groupIndex) => {
    const groupLeft = plotLeft + groupIndex * groupWidth + (groupWidth - barWidth * panel.series.length) / 2;
    panel.series.forEach((series, seriesIndex) => {
      const value = series.values[groupIndex];
      const x = round(groupLeft + seriesIndex * barWidth);
      if (value === undefined) return;
      const barTop = round(yOf(value));
      const height = round(plotTop + PLOT_HEIGHT - barTop);
      const title = `<title>${escapeXml(`${series.name}, ${group}: ${format(value)}`)}</title>`;
      parts.push(
        `<rect x="${x}" y="${barTop}" width="${round(barWidth - 2)}" height="${height}" fill="${colors[seriesIndex]}">${title}</rect>`,
      );
      parts.push(valueLabel(x + (barWidth - 2) / 2, barTop, format(value), barWidth));
    });
    parts.push(
      text(plotLeft + (groupIndex + 0.5) * groupWidth, plotTop + PLOT_HEIGHT + 16, group, {
        size: 12,
        anchor: "middle",
        weight: "600",
      }),
    );
  });
  parts.push(
    `<line x1="${plotLeft}" y1="${plotTop + PLOT_HEIGHT}" x2="${plotLeft + plotWidth}" y2="${plotTop + PLOT_HEIGHT}" stroke="#374151"/>`,
  );
  const height = plotTop - top + PLOT_HEIGHT + GROUP_LABEL_HEIGHT;
  return { svg: parts.join("\n"), height };
}

// Labels go above the bar; on narrow bars they are turned upright so neighbours never overlap.
function valueLabel(centerX: number, barTop: number, label: string, barWidth: number): string {
  const fits = label.length * 6 <= barWidth;
  if (fits) return text(round(centerX), barTop - 4, label, { size: 10, anchor: "middle", fill: "#111827" });
  const x = round(centerX + 3);
  const y = round(barTop - 4);
  return `<text x="${x}" y="${y}" font-size="10" fill="#111827" transform="rotate(-90 ${x} ${y})">${escapeXml(label)}</text>`;
}

function legendRows(series: readonly ChartSeries[], colors: readonly string[], top: number) {
  const parts: string[] = [];
  let x = MARGIN;
  let y = top;
  for (const [index, entry] of series.entries()) {
    const label = entry.role === "ours" ? `${entry.name} (ours)` : entry.name;
    const width = 18 + label.length * 6.6 + 16;
    if (x + width > WIDTH - MARGIN) {
      x = MARGIN;
      y += LEGEND_ROW_HEIGHT;
    }
    parts.push(`<rect x="${x}" y="${y + 3}" width="12" height="12" fill="${colors[index]}"/>`);
    parts.push(text(x + 18, y + 13, label, { size: 12, weight: entry.role === "ours" ? "600" : "400" }));
    x += width;
  }
  return { svg: parts.join("\n"), height: y - top + LEGEND_ROW_HEIGHT };
}

const NICE_STEPS = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];

/** The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × a power of ten that is at least `value` (1 for 0). */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = NICE_STEPS.find((candidate) => candidate * power >= value * (1 - 1e-12)) ?? 10;
  return step * power;
}

interface TextStyle {
  size: number;
  weight?: string;
  fill?: string;
  anchor?: "start" | "middle" | "end";
}

function text(x: number, y: number, content: string, style: TextStyle): string {
  const attributes = [
    `x="${round(x)}"`,
    `y="${round(y)}"`,
    `font-size="${style.size}"`,
    style.weight ? `font-weight="${style.weight}"` : "",
    `fill="${style.fill ?? "#111827"}"`,
    style.anchor && style.anchor !== "start" ? `text-anchor="${style.anchor}"` : "",
  ].filter(Boolean);
  return `<text ${attributes.join(" ")}>${escapeXml(content)}</text>`;
}

/** `value` with `&`, `<`, `>` and quotes escaped for XML text and attributes. */
export function escapeXml(value: string): string {
  return value
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
