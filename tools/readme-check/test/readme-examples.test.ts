// Every ```js block in a package README is run as an ES module inside that package's folder,
// where the package can import itself by name: a README example that no longer runs fails here.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const packagesDir = fileURLToPath(new URL("../../../packages/", import.meta.url));

function examples(readme: string): string[] {
  return [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1] as string);
}

const packages = readdirSync(packagesDir).filter((name) => {
  try {
    return examples(readFileSync(join(packagesDir, name, "README.md"), "utf8")).length > 0;
  } catch {
    return false;
  }
});

describe("README examples run", () => {
  it("finds examples to run", () => {
    expect(packages).toContain("core");
  });

  for (const name of packages) {
    const packageDir = join(packagesDir, name);
    const blocks = examples(readFileSync(join(packageDir, "README.md"), "utf8"));
    blocks.forEach((code, index) => {
      it(`${name} README example ${index + 1}`, async () => {
        const workDir = mkdtempSync(join(tmpdir(), "readme-example-"));
        // Written inside the package folder so `import "@persist-kit/<name>"` resolves to itself.
        const file = join(packageDir, `.readme-example-${index + 1}.mjs`);
        writeFileSync(file, code);
        try {
          const { PERSIST_URL: _, ...env } = process.env;
          const { stderr } = await run(process.execPath, [file], { cwd: workDir, env });
          expect(stderr).toBe("");
        } finally {
          rmSync(file, { force: true });
          rmSync(workDir, { recursive: true, force: true });
        }
      });
    });
  }
});
