// Reads and writes record files by hand, as a person with a text editor would: the tests check
// what is really on disk, not what the backend says about itself.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

const VALUE_HEADER = /^\{"format":1,"revision":(\d+)(?:,"expiresAt":(\d+))?,"value":/;

/** What a record file holds, read without the backend: its text, or `null` when there is no file. */
export async function readStoredText(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** The value text of a record file, `null` for no file or a tombstone; text that is no record comes back whole. */
export async function readStoredValue(file: string): Promise<string | null> {
  const text = await readStoredText(file);
  if (text === null) return null;
  if (/^\{"format":1,"revision":\d+\}$/.test(text)) return null;
  const header = VALUE_HEADER.exec(text);
  return header === null || !text.endsWith("}") ? text : text.slice(header[0].length, -1);
}

/** Writes `valueText` as the value of a format 1 record at `revision`, making the directories. */
export async function writeStoredValue(file: string, valueText: string, revision = 1): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `{"format":1,"revision":${revision},"value":${valueText}}`);
}
