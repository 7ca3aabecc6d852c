import type { ISignalRow } from "@persist-kit/core";

// The bot reports on stdout, one JSON event per line. Stdout to a pipe is written synchronously
// on Linux, so every event the bot printed before a SIGKILL reaches the supervisor.

/** What the bot tells the supervisor. */
export type BotEvent =
  | { type: "started"; tick: number }
  | { type: "recovered"; symbol: string; row: ISignalRow | null }
  | { type: "tick"; tick: number }
  | { type: "opening"; tick: number; symbol: string; row: ISignalRow }
  | { type: "opened"; tick: number; symbol: string; id: string }
  | { type: "closing"; tick: number; symbol: string; id: string; reason: "take-profit" | "stop-loss"; price: number }
  | { type: "closed"; tick: number; symbol: string; id: string }
  | { type: "finished"; tick: number };

/** How the supervisor starts one bot process. */
export interface BotOptions {
  backend: string;
  seed: number;
  symbols: string[];
  strategyName: string;
  fromTick: number;
  /** The bot stops by itself at this tick. */
  untilTick: number;
  tickMs: number;
}
