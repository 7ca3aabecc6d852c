// describeDurability(): where the fsyncs of a file store go, judged from the mount table.

import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PersistFile } from "@persist-kit/persist-file";
import { afterAll, describe, expect, it } from "vitest";
import { describeFileDurability } from "../src/durability.js";

const require = createRequire(import.meta.url);
const run = promisify(execFile);
const made: string[] = [];
function freshDir(parent = tmpdir()): string {
  const dir = mkdtempSync(join(parent, "persist-file-durability-"));
  made.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

// A mount table in the format of /proc/self/mountinfo, with `dir`'s parent mounted as `type`.
function mountTable(point: string, type: string): string {
  const file = join(freshDir(), "mountinfo");
  writeFileSync(
    file,
    [
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
      `40 22 0:35 / ${point.replaceAll(" ", "\\040")} rw,nosuid shared:9 - ${type} source rw`,
      "",
    ].join("\n"),
  );
  return file;
}

// Root writes everywhere, so the report for a directory this user cannot write is made by a child
// process that runs as another user (nobody, 65534) when the tests run as root.
async function reportAsAnotherUser(dir: string): Promise<{ crashSafe: boolean; warnings: string[] }> {
  const entry = require.resolve("@persist-kit/persist-file");
  const script = `
    if (process.getuid() === 0) { process.setgid(65534); process.setuid(65534); }
    const { PersistFile } = require(${JSON.stringify(entry)});
    const persist = new PersistFile({ baseDir: ${JSON.stringify(dir)}, writeThreads: 0 });
    persist.describeDurability().then((report) => { console.log(JSON.stringify(report)); return persist.close(); });
  `;
  const { stdout } = await run(process.execPath, ["-e", script]);
  return JSON.parse(stdout);
}

describe("describeDurability", () => {
  it("a baseDir on the disk file system under the temp dir is crash-safe, with no warnings", async () => {
    const persist = new PersistFile({ baseDir: join(freshDir(), "data") });
    try {
      const report = await persist.describeDurability();
      expect(report).toMatchObject({ crashSafe: true, known: true, kind: "disk", writable: true, warnings: [] });
      expect(report.fileSystem).not.toBe("unknown");
      expect(report.freeBytes).toBeGreaterThan(0);
    } finally {
      await persist.close();
    }
  });

  it("a baseDir on tmpfs (/dev/shm) is not crash-safe, and the warning says why and what to do", async () => {
    const persist = new PersistFile({ baseDir: join(freshDir("/dev/shm"), "data") });
    try {
      const report = await persist.describeDurability();
      expect(report.fileSystem).toBe("tmpfs");
      expect(report.crashSafe).toBe(false);
      expect(report.warnings.join("\n")).toMatch(/is on tmpfs \(memory.*lost at a reboot.*disk file system/);
    } finally {
      await persist.close();
    }
  });

  it("network and overlay file systems warn but count as crash-safe; a mount point with a space is unescaped", async () => {
    const spaced = join(freshDir(), "with space");
    mkdirSync(spaced);
    const nfs = await describeFileDurability(spaced, mountTable(spaced, "nfs4"));
    expect(nfs).toMatchObject({ fileSystem: "nfs4", mountPoint: spaced, crashSafe: true, kind: "network" });
    expect(nfs.warnings.join("\n")).toMatch(/on nfs4 .*fsync and atomic rename depend on the server/);
    const overlay = await describeFileDurability(spaced, mountTable(spaced, "overlay"));
    expect(overlay.warnings.join("\n")).toMatch(/on overlay .*mount a volume/);
  });

  it("an unreadable mount table makes the file system unknown, said in a warning", async () => {
    const report = await describeFileDurability(freshDir(), join(freshDir(), "no-such-mountinfo"));
    expect(report).toMatchObject({ fileSystem: "unknown", known: false, mountPoint: undefined });
    expect(report.warnings.join("\n")).toMatch(/cannot read the mount table/);
  });

  it("a directory every user can write, and one this user cannot, are named", async () => {
    const open = freshDir();
    chmodSync(open, 0o777);
    expect((await describeFileDurability(open)).warnings.join("\n")).toMatch(/writable by every user \(mode 777\)/);
    const closed = freshDir();
    chmodSync(closed, 0o755);
    const report = await reportAsAnotherUser(closed);
    expect(report).toMatchObject({ crashSafe: false, writable: false });
    expect(report.warnings.join("\n")).toMatch(/not writable by this user/);
  });
});
