import type { Reporter, TestModule } from "vitest/node";

// Prints one plain closing line, "tests: N passed, N failed, N skipped", that CI log readers
// understand whatever the runner's own summary looks like.
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const testModule of testModules) {
      let moduleFailed = 0;
      for (const test of testModule.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") moduleFailed++;
        else skipped++;
      }
      // A file that failed outside its tests (a beforeAll hook, an import) counts as one failure,
      // so its skipped tests never make the summary read "0 failed".
      failed += moduleFailed === 0 && testModule.state() === "failed" ? 1 : moduleFailed;
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
