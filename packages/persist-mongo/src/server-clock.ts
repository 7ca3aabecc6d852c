import { types } from "node:util";
import { RetryingOnce } from "@persist-kit/core";

// How long a reading of the server's clock is used before `hello` is asked again.
const CLOCK_REFRESH_MS = 30_000;
// This much disagreement between the wall clock and the monotonic clock since the reading means
// the wall clock was stepped or the machine slept: read the server's clock again.
const CLOCK_JUMP_MS = 1_000;

interface ClockReading {
  /** The server's `hello.localTime`, in milliseconds since the epoch. */
  serverMs: number;
  /** `performance.now()` halfway through the round trip that read it. */
  monotonicMs: number;
  /** `Date.now()` at that moment, only to notice a stepped wall clock or a sleep. */
  wallMs: number;
}

/**
 * The server's clock, for expiry: one `hello` (its `localTime`) every 30 seconds, carried forward
 * by this process's monotonic clock. This process's wall clock is never part of the answer, so a
 * host whose clock is off, or is stepped by NTP, writes and reads the same expiry as any other.
 */
export class ServerClock {
  readonly #reading: RetryingOnce<ClockReading>;

  constructor(admin: () => { command(command: object): Promise<Record<string, unknown>> }) {
    this.#reading = new RetryingOnce(async () => {
      const sent = performance.now();
      const { localTime } = await admin().command({ hello: 1 });
      const received = performance.now();
      if (!types.isDate(localTime)) throw new Error("the server's hello reply has no localTime");
      const halfway = (sent + received) / 2;
      return {
        serverMs: (localTime as Date).getTime(),
        monotonicMs: halfway,
        wallMs: Date.now() - (received - halfway),
      };
    });
  }

  /** Milliseconds since the epoch on the server's clock, give or take half a round trip. */
  async now(): Promise<number> {
    const reading = this.#reading.value;
    if (reading !== undefined && !isFresh(reading)) this.#reading.reset();
    const { serverMs, monotonicMs } = await this.#reading.get();
    return serverMs + (performance.now() - monotonicMs);
  }
}

function isFresh(reading: ClockReading): boolean {
  const elapsed = performance.now() - reading.monotonicMs;
  return elapsed <= CLOCK_REFRESH_MS && Math.abs(Date.now() - reading.wallMs - elapsed) <= CLOCK_JUMP_MS;
}
