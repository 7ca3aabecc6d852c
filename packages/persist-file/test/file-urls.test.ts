import path from "node:path";
import { createPersist } from "@persist-kit/core";
import { fromUrl, PersistFile } from "@persist-kit/persist-file";
import { describe, expect, it } from "vitest";

const invalidOption = expect.objectContaining({ name: "InvalidOptionError", code: "PERSIST_INVALID_OPTION" });

/** The directory `fromUrl` makes of `url` (the store is closed at once; nothing is created). */
async function baseDirOf(url: string): Promise<string> {
  const persist = fromUrl(url);
  await persist.close();
  return persist.baseDir;
}

describe("every form of a file: URL names one directory", () => {
  it("relative forms resolve against the working directory", async () => {
    expect(await baseDirOf("file:./data")).toBe(path.resolve("data"));
    expect(await baseDirOf("file:data")).toBe(path.resolve("data"));
    expect(await baseDirOf("file:relative/dir")).toBe(path.resolve("relative", "dir"));
    expect(await baseDirOf("file:../shared/data")).toBe(path.resolve("..", "shared", "data"));
    expect(await baseDirOf("file:")).toBe(path.resolve("data"));
  });

  it.skipIf(process.platform === "win32")("absolute forms name the same directory", async () => {
    for (const url of ["file:/srv/data", "file:///srv/data", "file://localhost/srv/data", "FILE:///srv/data"]) {
      expect(await baseDirOf(url), url).toBe("/srv/data");
    }
  });

  it.skipIf(process.platform === "win32")("percent-escapes are decoded in every form, as UTF-8", async () => {
    for (const url of ["file:///srv/my%20data", "file:/srv/my%20data", "file://localhost/srv/my%20data"]) {
      expect(await baseDirOf(url), url).toBe("/srv/my data");
    }
    expect(await baseDirOf("file:./my%20data")).toBe(path.resolve("my data"));
    expect(await baseDirOf("file:my%20data")).toBe(path.resolve("my data"));
    expect(await baseDirOf("file:/srv/caf%C3%A9")).toBe("/srv/café");
    expect(await baseDirOf("file:./%3Fq%23f")).toBe(path.resolve("?q#f"));
  });

  it("createPersist hands every form to the same parser", async () => {
    const importModule = (name: string) => import(name);
    for (const [url, expected] of [
      ["file:./my%20data", path.resolve("my data")],
      ["file:my%20data", path.resolve("my data")],
    ] as const) {
      const persist = (await createPersist(url, { importModule })) as PersistFile;
      expect(persist).toBeInstanceOf(PersistFile);
      expect(persist.baseDir, url).toBe(expected);
      await persist.close();
    }
    await expect(createPersist("file:./data?x=1", { importModule })).rejects.toThrow(invalidOption);
  });
});

describe("a file: URL that names no directory unambiguously is refused with InvalidOptionError", () => {
  it("a query or a fragment, in every form (a directory name holding ? or # spells them %3F and %23)", () => {
    for (const url of [
      "file:./data?ttl=1",
      "file:data?x=1",
      "file:/srv/data?x=1",
      "file:///srv/data?x=1",
      "file://localhost/srv/data?x=1",
      "file:./data#top",
      "file:/srv/data#top",
      "file:///srv/data#x",
      "file:?x=1",
    ]) {
      expect(() => fromUrl(url), url).toThrow(invalidOption);
    }
  });

  it("a broken escape, an encoded slash or NUL", () => {
    for (const url of [
      "file:./my%2",
      "file:./%zz",
      "file:/srv/%C3",
      "file:./a%2Fb",
      "file:///srv/a%2fb",
      "file:./a%00",
    ]) {
      expect(() => fromUrl(url), url).toThrow(invalidOption);
    }
  });

  it("another host, an empty path after //, or another scheme", () => {
    for (const url of [
      "file://server/data",
      "file://example.com/data",
      "file://",
      "file://localhost",
      "redis://localhost",
    ]) {
      expect(() => fromUrl(url), url).toThrow(invalidOption);
    }
  });
});
