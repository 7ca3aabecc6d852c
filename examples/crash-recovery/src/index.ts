export {
  type DemoOptions,
  type DemoReport,
  formatReport,
  runDemo,
  SECOND_BOT_OWNERSHIP,
  type SecondBotReport,
  type TimelineEntry,
} from "./supervisor.js";
