export { type DemoOptions, type DemoReport, formatReport, runDemo, type TimelineEntry } from "./supervisor.js";
