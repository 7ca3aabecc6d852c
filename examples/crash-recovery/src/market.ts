// A deterministic market: the price of a symbol at a tick depends only on the seed, the symbol
// and the tick, so a bot restarted at tick N sees exactly the prices it would have seen.

/** mulberry32: a small, fast, seedable generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function hashText(text: string): number {
  let hash = 2_166_136_261;
  for (let index = 0; index < text.length; index++) hash = Math.imul(hash ^ text.charCodeAt(index), 16_777_619);
  return hash >>> 0;
}

const STARTING_PRICES: Record<string, number> = {
  "BTC/USDT": 64_231.17,
  "ETH/USDT": 3_412.58,
  "SOL/USDT": 148.213,
  "XRP/USDT": 0.5231,
  "ADA/USDT": 0.3617,
  "DOGE/USDT": 0.12873,
  "BNB/USDT": 587.4,
  "LINK/USDT": 14.052,
};

/** The symbols the demo trades, in order. */
export const SYMBOLS = Object.keys(STARTING_PRICES);

/** What one symbol's market does at one tick. */
export interface MarketTick {
  price: number;
  /** Uniform in [0, 1): the bot's decision to open a position at this tick. */
  entryDraw: number;
  /** Uniform in [0, 1): long or short. */
  sideDraw: number;
}

/** A seeded random walk per symbol, replayable from tick 0 to any tick. */
export class Market {
  readonly #random: () => number;
  #price: number;
  #tick = -1;
  #current: MarketTick | undefined;

  constructor(
    seed: number,
    readonly symbol: string,
  ) {
    this.#random = seededRandom(seed ^ hashText(symbol));
    this.#price = STARTING_PRICES[symbol] ?? 100;
  }

  /** The market at `tick`; ticks must not go backwards. */
  at(tick: number): MarketTick {
    if (tick < this.#tick) throw new Error(`tick ${tick} is before ${this.#tick}`);
    while (this.#tick < tick) {
      this.#tick++;
      // A 0.25% step each tick, rounded to 8 significant digits like an exchange price.
      const step = (this.#random() - 0.5) * 0.005;
      this.#price = Number((this.#price * (1 + step)).toPrecision(8));
      this.#current = { price: this.#price, entryDraw: this.#random(), sideDraw: this.#random() };
    }
    return this.#current as MarketTick;
  }
}
