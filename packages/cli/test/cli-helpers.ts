// Runs the CLI in this process with buffers for its streams, or as the built program in a child.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { getMongoUrl, getPostgresUrl, getRedisUrl } from "@persist-kit/tools-test-servers";
import { runCli } from "../src/index.js";

export const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

export interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

function collect(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk) => {
    text += chunk;
  });
  return { stream, text: () => text };
}

/** Runs one command line in this process; `stdin` is what standard input holds (not a terminal). */
export async function cli(
  args: readonly string[],
  options: { stdin?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Ran> {
  const stdout = collect();
  const stderr = collect();
  const status = await runCli(args, {
    stdout: stdout.stream,
    stderr: stderr.stream,
    stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
    env: options.env ?? {},
    interactive: false,
  });
  return { status, stdout: stdout.text(), stderr: stderr.text() };
}

/** Starts the built `persist-kit` program; its output is collected as it comes. */
export function spawnCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; output: () => Ran; exited: Promise<Ran> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH, ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const output = () => ({ status: child.exitCode ?? -1, stdout, stderr });
  const exited = new Promise<Ran>((resolve) =>
    child.once("close", (code, signal) => resolve({ status: code ?? (signal === null ? -1 : 128), stdout, stderr })),
  );
  return { child, output, exited };
}

/** A scope name of its own for one test run, so parallel runs and earlier runs never meet. */
export function freshScope(label: string): string {
  return `cli_${label}_${randomBytes(4).toString("hex")}`;
}

function withScope(url: string, scope: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}scope=${scope}`;
}

export function freshDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `persist-kit-cli-${label}-`));
}

/** A fresh, empty store URL on each backend: a new directory, or a new scope on the test server. */
export const BACKENDS: Record<string, (label: string) => Promise<string>> = {
  file: async (label) => `file:${join(freshDir(label), "data")}`,
  redis: async (label) => withScope(await getRedisUrl(), freshScope(label)),
  postgres: async (label) => withScope(await getPostgresUrl(), freshScope(label)),
  mongo: async (label) => withScope(await getMongoUrl(), freshScope(label)),
};
