// Every README, as a new user meets it: the packed tarballs are installed into fresh npm, pnpm and
// yarn (1.x) projects with the README install lines, once per supported driver major, then
// installed a second time; every ```js and ```ts block of the READMEs runs there, as an ES module
// and as CommonJS, and every ```ts block compiles under strict TypeScript with node16 and with
// bundler module resolution.
//
// PERSIST_KIT_INSTALL_MATRIX narrows the run for a quick local check, e.g. "npm:current".
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module script without declarations
import { installFrameworkStandIn } from "../../../packages/backtest-kit/scripts/framework-stand-in.mjs";
import { pack } from "./packed.js";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const YARN = "yarn@1.22.22";

type Manager = "npm" | "pnpm" | "yarn";
const DRIVER_MAJORS = {
  previous: { ioredis: "5", mongodb: "6", pg: "8" },
  current: { ioredis: "6", mongodb: "7", pg: "8" },
} as const;
type DriverSet = keyof typeof DRIVER_MAJORS;

interface Block {
  readme: string;
  lang: "js" | "ts";
  name: string;
  code: string;
}

const readmes = ["README.md", ...readdirSync(join(root, "packages")).map((name) => join("packages", name, "README.md"))]
  .filter((path) => existsSync(join(root, path)))
  .map((path) => ({ path, text: readFileSync(join(root, path), "utf8") }));

const blocks: Block[] = readmes.flatMap(({ path, text }) =>
  [...text.matchAll(/^```(js|ts)\n([\s\S]*?)^```/gm)].map((match, index) => {
    const code = match[2] as string;
    const named = /^\/\/ ([\w.-]+)\.(?:mjs|js|ts)\n/.exec(code)?.[1];
    const readme = path === "README.md" ? "root" : basename(join(path, ".."));
    return { readme, lang: match[1] as "js" | "ts", name: named ?? `${readme}-${index + 1}`, code };
  }),
);

/** Every `npm install` line of a ```sh block, as its words (global installs of tools left out). */
const installLines: string[][] = [
  ...new Set(
    readmes.flatMap(({ text }) =>
      [...text.matchAll(/^```sh\n([\s\S]*?)^```/gm)].flatMap((match) =>
        (match[1] as string)
          .split("\n")
          .map((line) => line.replace(/#.*$/, "").trim())
          .filter((line) => /^npm install /.test(line) && !line.includes("--global")),
      ),
    ),
  ),
].map((line) => line.trim().split(/\s+/).slice(2));

/** A block's imports become `require` calls and the rest runs in an async function: the same program as CommonJS. */
function asCommonJs(code: string, lang: "js" | "ts"): string {
  const imports: string[] = [];
  const body = code.replace(
    /^import\s+([\s\S]*?)\s+from\s+("[^"]+");\n/gm,
    (statement, clause: string, from: string) => {
      if (lang === "ts") imports.push(statement.trimEnd());
      else if (clause.startsWith("{")) imports.push(`const ${clause.replace(/\s+as\s+/g, ": ")} = require(${from});`);
      else imports.push(`const ${clause.replace(/^\*\s+as\s+/, "")} = require(${from});`);
      return "";
    },
  );
  return `${imports.join("\n")}\n(async () => {\n${body}\n})().catch((error) => {\n  console.error(error);\n  process.exitCode = 1;\n});\n`;
}

const runsAsProgram = (block: Block) => !/^export /m.test(block.code) && !block.name.endsWith(".test");
/** The framework's JavaScript cannot be installed (its dependencies' versions are not published); its declarations can. */
const needsFrameworkRuntime = (block: Block) => /from "backtest-kit"/.test(block.code);

function managerCommand(manager: Manager): [string, string[]] {
  return manager === "yarn" ? ["npx", ["--yes", YARN]] : [manager, []];
}

async function sh(cwd: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 0) {
  try {
    return await exec(command, args, {
      cwd,
      env: { ...env, NO_COLOR: "1" },
      maxBuffer: 64 * 1024 * 1024,
      timeout,
      killSignal: "SIGKILL",
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    const { killed } = error as { killed?: boolean };
    const how = killed === true ? "did not end in time" : "failed";
    throw new Error(`${command} ${args.join(" ")} ${how} in ${cwd}:\n${stdout ?? ""}\n${stderr ?? ""}`);
  }
}

/** `npm install` words as the manager's own add command, with tarballs for our packages and the driver majors of `drivers`. */
function addCommand(manager: Manager, words: string[], tarballs: Record<string, string>, drivers: DriverSet): string[] {
  const dev = words.includes("--save-dev");
  const specs = words
    .filter((word) => !word.startsWith("-"))
    .map((word) => {
      const ours = /^@persist-kit\/(.+)$/.exec(word)?.[1];
      if (ours !== undefined) {
        const tarball = tarballs[ours];
        if (tarball === undefined) throw new Error(`a README installs ${word}, which is not a package here`);
        return manager === "npm" ? tarball : `file:${tarball}`;
      }
      const major = (DRIVER_MAJORS[drivers] as Record<string, string>)[word];
      return major === undefined ? word : `${word}@${major}`;
    });
  if (manager === "npm")
    return ["install", "--no-audit", "--no-fund", "--loglevel=error", ...(dev ? ["--save-dev"] : []), ...specs];
  if (manager === "pnpm") return ["add", ...(dev ? ["--save-dev"] : []), ...specs];
  return ["add", "--silent", "--no-progress", ...(dev ? ["--dev"] : []), ...specs];
}

const matrix = (["npm", "pnpm", "yarn"] as const)
  .flatMap((manager) => (["previous", "current"] as const).map((drivers) => ({ manager, drivers })))
  .filter(({ manager, drivers }) => {
    const only = process.env.PERSIST_KIT_INSTALL_MATRIX;
    return only === undefined || only.split(",").includes(`${manager}:${drivers}`);
  });

describe("READMEs as a new user meets them", () => {
  let tarballDir: string;
  let tarballs: Record<string, string>;

  beforeAll(async () => {
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-readme-tarballs-"));
    const names = readdirSync(join(root, "packages")).filter((name) =>
      existsSync(join(root, "packages", name, "package.json")),
    );
    const byFolder = await pack(names, tarballDir);
    tarballs = Object.fromEntries(
      Object.entries(byFolder).map(([folder, tarball]) => {
        const { name } = JSON.parse(readFileSync(join(root, "packages", folder, "package.json"), "utf8")) as {
          name: string;
        };
        return [name.replace(/^@persist-kit\//, ""), tarball];
      }),
    );
  });

  afterAll(() => rmSync(tarballDir, { recursive: true, force: true }));

  it("finds install lines and blocks of both languages to run", () => {
    expect(installLines.length).toBeGreaterThanOrEqual(6);
    expect(blocks.filter((block) => block.lang === "js").length).toBeGreaterThanOrEqual(15);
    expect(blocks.filter((block) => block.lang === "ts").length).toBeGreaterThanOrEqual(8);
    expect(matrix.length).toBeGreaterThan(0);
  });

  for (const { manager, drivers } of matrix) {
    describe(`${manager}, ${drivers} driver majors`, () => {
      let project: string;
      const [command, prefix] = managerCommand(manager);
      const pm = (...args: string[]) => sh(project, command, [...prefix, ...args]);

      beforeAll(() => {
        project = mkdtempSync(join(tmpdir(), `persist-kit-readme-${manager}-`));
        writeFileSync(
          join(project, "package.json"),
          JSON.stringify({ name: "readme-user", version: "1.0.0", private: true, type: "module" }),
        );
      });

      afterAll(() => {
        if (process.env.PERSIST_KIT_KEEP_PROJECTS === undefined) rmSync(project, { recursive: true, force: true });
      });

      it("installs every README install line, then installs again", async () => {
        for (const words of installLines) await pm(...addCommand(manager, words, tarballs, drivers));
        await pm("install");
        const installed = (name: string) =>
          (JSON.parse(readFileSync(join(project, "node_modules", name, "package.json"), "utf8")) as { version: string })
            .version;
        for (const [driver, major] of Object.entries(DRIVER_MAJORS[drivers])) {
          expect(installed(driver).split(".")[0], driver).toBe(major);
        }
        // One core for every package: each backend resolves the copy the application has.
        const { stdout } = await sh(project, process.execPath, [
          "--input-type=module",
          "-e",
          `import { createRequire } from "node:module";
const require = createRequire(import.meta.url + "/");
const core = require.resolve("@persist-kit/core");
const seen = ["persist-file", "persist-redis", "persist-postgres", "persist-mongo", "backtest-kit", "contract"].map((name) =>
  createRequire(require.resolve("@persist-kit/" + name)).resolve("@persist-kit/core") === core);
console.log(JSON.stringify(seen));`,
        ]);
        expect(JSON.parse(stdout)).toEqual([true, true, true, true, true, true]);
      }, 600_000);

      it("compiles every ts block strictly with node16 and with bundler resolution", async () => {
        await pm(
          ...addCommand(manager, ["--save-dev", "typescript@~5.9.3", "@types/node@^20.19.0"], tarballs, drivers),
        );
        installFrameworkStandIn(join(project, "node_modules"));
        const dir = join(project, "snippets");
        mkdirSync(dir, { recursive: true });
        for (const block of blocks.filter((candidate) => candidate.lang === "ts")) {
          const file = block.name.endsWith(".test") ? `${block.name}.ts` : `${block.name}.mts`;
          writeFileSync(join(dir, file), block.code);
          if (runsAsProgram(block)) writeFileSync(join(dir, `${block.name}.cts`), asCommonJs(block.code, "ts"));
        }
        const compilerOptions = { target: "ES2022", strict: true, skipLibCheck: true, types: ["node"] };
        writeFileSync(
          join(project, "tsconfig.node16.json"),
          JSON.stringify({
            compilerOptions: {
              ...compilerOptions,
              module: "node16",
              moduleResolution: "node16",
              outDir: "out",
              rootDir: ".",
            },
            include: ["snippets"],
          }),
        );
        writeFileSync(
          join(project, "tsconfig.bundler.json"),
          JSON.stringify({
            compilerOptions: { ...compilerOptions, module: "preserve", moduleResolution: "bundler", noEmit: true },
            include: ["snippets/*.mts", "snippets/*.ts"],
          }),
        );
        const tsc = join(project, "node_modules", "typescript", "bin", "tsc");
        await sh(project, process.execPath, [tsc, "-p", "tsconfig.node16.json"]);
        await sh(project, process.execPath, [tsc, "-p", "tsconfig.bundler.json"]);
        expect(
          readdirSync(join(project, "out", "snippets")).filter((file) => file.endsWith(".cjs")).length,
        ).toBeGreaterThan(0);
      }, 600_000);

      it("runs every js and ts block as an ES module and as CommonJS, with nothing on stderr", async () => {
        const { PERSIST_URL: _, ...env } = process.env;
        const programs: string[] = [];
        const dir = join(project, "snippets");
        for (const block of blocks.filter((candidate) => candidate.lang === "js")) {
          writeFileSync(join(dir, `${block.name}.mjs`), block.code);
          programs.push(join("snippets", `${block.name}.mjs`));
          if (runsAsProgram(block)) {
            writeFileSync(join(dir, `${block.name}.cjs`), asCommonJs(block.code, "js"));
            programs.push(join("snippets", `${block.name}.cjs`));
          }
        }
        for (const block of blocks.filter((candidate) => candidate.lang === "ts")) {
          if (!runsAsProgram(block) || needsFrameworkRuntime(block)) continue;
          programs.push(join("out", "snippets", `${block.name}.mjs`), join("out", "snippets", `${block.name}.cjs`));
        }
        mkdirSync(join(project, "dump"), { recursive: true }); // the importer block reads a framework dump here
        const failures: string[] = [];
        for (const program of programs) {
          try {
            const { stderr } = await sh(project, process.execPath, [program], env, 30_000);
            if (stderr !== "") failures.push(`${program} wrote to stderr:\n${stderr}`);
          } catch (error) {
            failures.push((error as Error).message);
          }
        }
        expect(failures).toEqual([]);
        expect(programs.length).toBeGreaterThanOrEqual(40);
      }, 600_000);

      it("runs the contract README's test file with vitest", async () => {
        const test = blocks.find((block) => block.name.endsWith(".test"));
        expect(test?.readme).toBe("contract");
        const { stdout } = await sh(project, process.execPath, [
          join(project, "node_modules", "vitest", "vitest.mjs"),
          "run",
          join("snippets", `${test?.name}.ts`),
        ]);
        const [, passed, total] = /Tests\s+(\d+) passed \((\d+)\)/.exec(stdout) ?? [];
        expect(Number(passed)).toBeGreaterThan(0);
        expect(passed).toBe(total);
      });
    });
  }
});
