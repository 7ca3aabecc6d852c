// Drives persist-kit's classes exactly as backtest-kit 19.5's hook objects do (PersistSignalUtils,
// PersistRiskUtils, ...): one instance per context key, made on first use with the domain's
// constructor arguments; `waitForInit(initial)` before every read and write, `initial` true only
// the first time; registering a class again drops every instance.
import { DOMAINS, type Domain } from "../src/index.js";

type Ctor = new (...args: never[]) => Record<string, unknown>;

/** The hooks of one domain, as the framework's `Persist<Domain>Adapter` object has them. */
export class FrameworkHook {
  #ctor: Ctor | undefined;
  #instances = new Map<string, { instance: Record<string, unknown>; initialised: boolean }>();

  register(ctor: unknown): void {
    this.#ctor = ctor as Ctor;
    this.#instances = new Map();
  }

  get registered(): boolean {
    return this.#ctor !== undefined;
  }

  /** Calls `method` of the instance for `context`, after `waitForInit` as the framework does. */
  async call(context: readonly unknown[], method: string, ...args: unknown[]): Promise<unknown> {
    const entry = this.#instance(context);
    await (entry.instance.waitForInit as (initial: boolean) => Promise<void>).call(entry.instance, !entry.initialised);
    entry.initialised = true;
    return (entry.instance[method] as (...args: unknown[]) => Promise<unknown>).apply(entry.instance, args);
  }

  /** Collects what an async-generator method yields, after `waitForInit`. */
  async list(context: readonly unknown[], method: string): Promise<unknown[]> {
    const entry = this.#instance(context);
    await (entry.instance.waitForInit as (initial: boolean) => Promise<void>).call(entry.instance, !entry.initialised);
    entry.initialised = true;
    const items: unknown[] = [];
    for await (const item of (entry.instance[method] as () => AsyncGenerator<unknown>).call(entry.instance)) {
      items.push(item);
    }
    return items;
  }

  #instance(context: readonly unknown[]) {
    if (this.#ctor === undefined) throw new Error("no class registered");
    const id = JSON.stringify(context);
    let entry = this.#instances.get(id);
    if (entry === undefined) {
      entry = { instance: new this.#ctor(...(context as never[])), initialised: false };
      this.#instances.set(id, entry);
    }
    return entry;
  }
}

/**
 * A stand-in for the backtest-kit module object: `PersistSignalAdapter.usePersistSignalAdapter`
 * and the other fifteen, plus one hook persist-kit does not know (`PersistFutureAdapter`).
 */
export function frameworkModule(): { module: Record<string, unknown>; hooks: Record<Domain, FrameworkHook> } {
  const module: Record<string, unknown> = {};
  const hooks = {} as Record<Domain, FrameworkHook>;
  for (const domain of [...DOMAINS, "Future"]) {
    const hook = new FrameworkHook();
    module[`Persist${domain}Adapter`] = {
      [`usePersist${domain}Adapter`]: (ctor: unknown) => hook.register(ctor),
      useJson() {},
    };
    if (domain !== "Future") hooks[domain as Domain] = hook;
  }
  module.listenSignal = () => {};
  return { module, hooks };
}
