// Type-checks every persist-kit class against backtest-kit's own published declarations, fetched
// into a temporary folder by framework-stand-in.mjs (nothing of it is committed).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { installFrameworkStandIn } from "./framework-stand-in.mjs";

const VERSION = process.env.BACKTEST_KIT_VERSION ?? "19.5.0";
const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const work = mkdtempSync(join(tmpdir(), "persist-kit-backtest-kit-types-"));

const CHECK = `import type * as Framework from "backtest-kit";
import { type DomainClasses, installPersistKit } from ${JSON.stringify(join(packageDir, "src", "index.js"))};

declare const classes: DomainClasses;
declare const framework: typeof import("backtest-kit");

// Every class is a constructor the framework's hook takes, and the hook takes it.
export const ctors: {
  [Domain in keyof DomainClasses]: unknown;
} = {
  Signal: classes.Signal satisfies Framework.TPersistSignalInstanceCtor,
  Risk: classes.Risk satisfies Framework.TPersistRiskInstanceCtor,
  Schedule: classes.Schedule satisfies Framework.TPersistScheduleInstanceCtor,
  Strategy: classes.Strategy satisfies Framework.TPersistStrategyInstanceCtor,
  Partial: classes.Partial satisfies Framework.TPersistPartialInstanceCtor,
  Breakeven: classes.Breakeven satisfies Framework.TPersistBreakevenInstanceCtor,
  Candle: classes.Candle satisfies Framework.TPersistCandleInstanceCtor,
  Storage: classes.Storage satisfies Framework.TPersistStorageInstanceCtor,
  Notification: classes.Notification satisfies Framework.TPersistNotificationInstanceCtor,
  Log: classes.Log satisfies Framework.TPersistLogInstanceCtor,
  Measure: classes.Measure satisfies Framework.TPersistMeasureInstanceCtor,
  Interval: classes.Interval satisfies Framework.TPersistIntervalInstanceCtor,
  Memory: classes.Memory satisfies Framework.TPersistMemoryInstanceCtor,
  Recent: classes.Recent satisfies Framework.TPersistRecentInstanceCtor,
  State: classes.State satisfies Framework.TPersistStateInstanceCtor,
  Session: classes.Session satisfies Framework.TPersistSessionInstanceCtor,
};

framework.PersistSignalAdapter.usePersistSignalAdapter(classes.Signal);
framework.PersistRiskAdapter.usePersistRiskAdapter(classes.Risk);
framework.PersistScheduleAdapter.usePersistScheduleAdapter(classes.Schedule);
framework.PersistStrategyAdapter.usePersistStrategyAdapter(classes.Strategy);
framework.PersistPartialAdapter.usePersistPartialAdapter(classes.Partial);
framework.PersistBreakevenAdapter.usePersistBreakevenAdapter(classes.Breakeven);
framework.PersistCandleAdapter.usePersistCandleAdapter(classes.Candle);
framework.PersistStorageAdapter.usePersistStorageAdapter(classes.Storage);
framework.PersistNotificationAdapter.usePersistNotificationAdapter(classes.Notification);
framework.PersistLogAdapter.usePersistLogAdapter(classes.Log);
framework.PersistMeasureAdapter.usePersistMeasureAdapter(classes.Measure);
framework.PersistIntervalAdapter.usePersistIntervalAdapter(classes.Interval);
framework.PersistMemoryAdapter.usePersistMemoryAdapter(classes.Memory);
framework.PersistRecentAdapter.usePersistRecentAdapter(classes.Recent);
framework.PersistStateAdapter.usePersistStateAdapter(classes.State);
framework.PersistSessionAdapter.usePersistSessionAdapter(classes.Session);

// The module object itself is what installPersistKit takes.
export const installed = installPersistKit(framework, "memory:");
`;

try {
  installFrameworkStandIn(join(work, "node_modules"), VERSION);
  writeFileSync(join(work, "check.ts"), CHECK);
  writeFileSync(
    join(work, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2024"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ["node"],
        typeRoots: [join(dirname(require.resolve("@types/node/package.json")), "..")],
      },
      files: ["check.ts"],
    }),
  );
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", work], { stdio: "inherit" });
  process.stdout.write(`every persist-kit class type-checks against backtest-kit ${VERSION}'s declarations\n`);
} catch (error) {
  process.stderr.write(`the check against backtest-kit ${VERSION}'s declarations failed\n`);
  process.exitCode = 1;
  if (process.env.DEBUG_CHECK) console.error(error);
} finally {
  rmSync(work, { recursive: true, force: true });
}
