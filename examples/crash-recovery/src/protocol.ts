import type { ISignalRow } from "@persist-kit/core";

// The bot reports on stdout, one JSON event per line. Stdout to a pipe is written synchronously
// on Linux, so every event the bot printed before a SIGKILL reaches the supervisor.

/** What the bot tells the supervisor. */
export type BotEvent =
  | { type: "started"; tick: number }
  /** Another bot holds the key (OwnershipError); printed once per bot, which keeps trying. */
  | { type: "refused"; symbol: string; message: string; holderPid: number | undefined }
  | { type: "recovered"; symbol: string; row: ISignalRow | null }
  | { type: "tick"; tick: number }
  | { type: "opening"; tick: number; symbol: string; row: ISignalRow }
  | { type: "opened"; tick: number; symbol: string; id: string }
  | { type: "closing"; tick: number; symbol: string; id: string; reason: "take-profit" | "stop-loss"; price: number }
  | { type: "closed"; tick: number; symbol: string; id: string }
  | { type: "finished"; tick: number };

/** The ticks a bot trades. */
export interface BotTicks {
  fromTick: number;
  /** The bot stops by itself at this tick. */
  untilTick: number;
}

/** Single-writer ownership: the adapter's `exclusive` lease and its per-call deadline. */
export interface BotOwnership {
  leaseMs: number;
  timeoutMs: number;
}

/** How the supervisor starts one bot process. */
export interface BotOptions extends BotTicks {
  backend: string;
  seed: number;
  symbols: string[];
  strategyName: string;
  tickMs: number;
  /** Take every key with an exclusive adapter, and wait while another bot holds it. Default: not exclusive. */
  exclusive?: BotOwnership;
  /**
   * Started beside a running bot: once it owns every key, it reads its ticks as one JSON line
   * ({@link BotTicks}) on stdin, since where to resume is known only when the other bot is killed.
   */
  standby?: boolean;
}
