import path from "node:path";
import { type RecordKey, SIGNAL_NAMESPACE, type SignalKey } from "@persist-kit/core";

/** What every record file name ends with. */
export const RECORD_FILE_EXTENSION = ".json";

// A segment plus ".json" stays within the 255-byte file name limit of common file systems.
const MAX_SEGMENT_LENGTH = 255 - RECORD_FILE_EXTENSION.length;
// Marks a segment whose name goes on in a sub-directory; never produced by encodeName.
const CONTINUED = "+";
const KEPT_CHARACTER = /^[a-z0-9_-]$/;
const UPPERCASE_LETTER = /^[A-Z]$/;
// Windows refuses these names (with any extension), whatever their case.
const WINDOWS_DEVICE_NAME = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/;
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes a strategy name or symbol into a file-name-safe string, reversibly (see
 * {@link decodeName}). `a`-`z`, `0`-`9`, `_` and `-` stay as they are; an uppercase ASCII letter
 * becomes `^` and the lowercase letter; every other character becomes its UTF-8 bytes as `%XX`
 * (uppercase hex). A name that would be a Windows device name (`con`, `nul`, ...) has its first
 * character escaped.
 *
 * The result holds no `.`, `/` or `\`, so it is never `.`, `..`, a hidden file or a path, and
 * never ends in `.tmp`. It is plain ASCII whose letter case is fixed by position, so two different
 * names stay different on case-insensitive (`A` vs `a`) and normalizing (`e\u0301` vs `\u00e9`)
 * file systems. It may exceed 255 bytes: {@link recordLocation} splits long ones.
 *
 * Pass only valid names (see `keyProblem` in `@persist-kit/core`).
 * @example encodeName("BTC/USDT") // "^b^t^c%2F^u^s^d^t"
 */
export function encodeName(name: string): string {
  let encoded = "";
  for (const character of name) {
    if (KEPT_CHARACTER.test(character)) encoded += character;
    else if (UPPERCASE_LETTER.test(character)) encoded += `^${character.toLowerCase()}`;
    else for (const byte of Buffer.from(character, "utf8")) encoded += escapeByte(byte);
  }
  if (WINDOWS_DEVICE_NAME.test(encoded)) encoded = `${escapeByte(encoded.charCodeAt(0))}${encoded.slice(1)}`;
  return encoded;
}

/**
 * The name {@link encodeName} turned into `encoded`, or `undefined` when `encoded` is not exactly
 * what `encodeName` produces for any name (a file this backend did not write).
 * @example decodeName("^b^t^c%2F^u^s^d^t") // "BTC/USDT"
 */
export function decodeName(encoded: string): string | undefined {
  const bytes: number[] = [];
  for (let index = 0; index < encoded.length; index++) {
    const character = encoded.charAt(index);
    if (character === "%") {
      const hex = encoded.slice(index + 1, index + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      index += 2;
    } else if (character === "^") {
      const letter = encoded.charAt(index + 1);
      if (!/^[a-z]$/.test(letter)) return undefined;
      bytes.push(letter.toUpperCase().charCodeAt(0));
      index += 1;
    } else if (KEPT_CHARACTER.test(character)) {
      bytes.push(character.charCodeAt(0));
    } else {
      return undefined;
    }
  }
  let name: string;
  try {
    name = STRICT_UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
  // Only the one canonical spelling maps back, so a listing never yields a key twice.
  return name !== "" && encodeName(name) === encoded ? name : undefined;
}

function escapeByte(byte: number): string {
  return `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
}

/**
 * Splits an encoded name into path segments that each fit a file name: one segment when it is
 * short, else nearly equal parts where all but the last end in `+` (a sub-directory per part).
 * Equal parts keep the last one long, so it can never be a short Windows device name.
 */
export function nameSegments(encoded: string): string[] {
  if (encoded.length <= MAX_SEGMENT_LENGTH) return [encoded];
  const count = Math.ceil(encoded.length / (MAX_SEGMENT_LENGTH - CONTINUED.length));
  const size = Math.ceil(encoded.length / count);
  const segments: string[] = [];
  for (let start = 0; start < encoded.length; start += size) segments.push(encoded.slice(start, start + size));
  return segments.map((segment, index) => (index < segments.length - 1 ? `${segment}${CONTINUED}` : segment));
}

/** True for a directory name that continues a long encoded name (see {@link nameSegments}). */
export function isContinuedSegment(segment: string): boolean {
  return segment.endsWith(CONTINUED);
}

/**
 * The directory below `baseDir` that holds the records of every namespace but `"signal"`, one
 * sub-directory per namespace. Its name starts with `.`, which no encoded name does, so it never
 * meets a strategy directory.
 */
export const RECORDS_DIRECTORY = ".records";

/** Where one record lives: its file, the directory holding it, and its group's directory. */
export interface RecordLocation {
  /** The directory that holds `file`. */
  directory: string;
  /** `{...}/{last part}.json`. */
  file: string;
  /** The directory of the key's first part: where its group's revision floor and group lock live. */
  groupDirectory: string;
}

/**
 * The directory that holds every record of `namespace`: `baseDir` itself for signals (so they keep
 * the documented `{baseDir}/{strategy}/{symbol}.json`), `{baseDir}/.records/{namespace}` otherwise.
 * Namespaces are lower-case letters, digits and `-` (checked by core), file-name safe as they are.
 */
export function namespaceDirectory(baseDir: string, namespace: string): string {
  return namespace === SIGNAL_NAMESPACE ? baseDir : path.join(baseDir, RECORDS_DIRECTORY, namespace);
}

/**
 * The location of a record: `{namespace directory}/{part 1}/.../{last part}.json`, each part
 * encoded with {@link encodeName} and split by {@link nameSegments} when long. Always inside
 * `baseDir`. Pass only keys checked by core (`assertRecordKey`).
 */
export function recordLocation(baseDir: string, key: RecordKey): RecordLocation {
  const root = namespaceDirectory(baseDir, key.namespace);
  const segments = key.parts.map((part) => nameSegments(encodeName(part)));
  const lastSegments = segments.pop() ?? [];
  const fileName = `${lastSegments.pop()}${RECORD_FILE_EXTENSION}`;
  const directory = path.join(root, ...segments.flat(), ...lastSegments);
  const groupDirectory = path.join(root, ...nameSegments(encodeName(key.parts[0] ?? "")));
  return { directory, file: path.join(directory, fileName), groupDirectory };
}

// The longest name this backend makes beside a record file: a lock's break marker,
// `.{32 hex}.break` (39 bytes), or a temp file, `.{12 hex}-{pid}-{12 hex}.tmp` (31 bytes and the
// pid: at most 7 digits on Linux, macOS and the BSDs, 10 on Windows). The key lock is shorter.
const LONGEST_NAME_BESIDE_A_RECORD = Math.max(39, 31 + (process.platform === "win32" ? 10 : 7));

/**
 * The directories below `baseDir` that the operations on the record at `location` pass through,
 * top first: to its file, and to its group's floor and lock (which for a key of one part is not on
 * the way to its file). None of them may be a symbolic link.
 */
export function directoriesOnTheWay(baseDir: string, location: RecordLocation): string[] {
  return [
    ...new Set([
      ...directoriesBelow(baseDir, location.directory),
      ...directoriesBelow(baseDir, location.groupDirectory),
    ]),
  ];
}

/**
 * Every directory from `baseDir` (left out) down to `directory` (included), top first: the ones
 * that must not be symbolic links (baseDir itself, and what is above it, may be).
 */
export function directoriesBelow(baseDir: string, directory: string): string[] {
  const directories: string[] = [];
  let current = baseDir;
  for (const segment of path.relative(baseDir, directory).split(path.sep)) {
    if (segment === "") continue;
    current = path.join(current, segment);
    directories.push(current);
  }
  return directories;
}

/**
 * The longest path the system takes, in bytes: PATH_MAX less its closing NUL (4096 on Linux, 1024
 * on macOS and the BSDs). Node hands Windows long absolute paths in their `\\?\` form.
 */
export const MAX_PATH_BYTES = process.platform === "linux" ? 4095 : process.platform === "win32" ? 32_766 : 1023;

/**
 * The length in bytes of the longest path that the operations on the record at `location` pass
 * to the system: its file, or a lock's break marker beside it. Over {@link MAX_PATH_BYTES}, the
 * key cannot be stored under that `baseDir`.
 */
export function longestPathBytes(location: RecordLocation): number {
  return Math.max(
    Buffer.byteLength(location.file),
    Buffer.byteLength(location.directory) + path.sep.length + LONGEST_NAME_BESIDE_A_RECORD,
  );
}

/**
 * The location of one signal: `{baseDir}/{strategy}/{symbol}.json` (see {@link recordLocation}).
 * @example signalLocation("./data", { strategyName: "momentum", symbol: "BTC/USDT" }).file
 * // "data/momentum/^b^t^c%2F^u^s^d^t.json"
 */
export function signalLocation(baseDir: string, key: SignalKey): RecordLocation {
  return recordLocation(baseDir, { namespace: SIGNAL_NAMESPACE, parts: [key.strategyName, key.symbol] });
}

/**
 * The file holding the signal of `key` under `baseDir`, for tools and tests that look at the store
 * directly. Always inside `baseDir`.
 * @example signalFilePath("./data", { strategyName: "momentum", symbol: "BTC/USDT" })
 * // "data/momentum/^b^t^c%2F^u^s^d^t.json"
 */
export function signalFilePath(baseDir: string, key: SignalKey): string {
  return signalLocation(baseDir, key).file;
}

/**
 * The key parts stored at the path made of `segments` (one list of path segments per part, the
 * last one's last segment without `.json`), or `undefined` unless {@link recordLocation} gives
 * exactly that path for them.
 */
export function partsFromSegments(segments: readonly string[][]): string[] | undefined {
  const parts: string[] = [];
  for (const partSegments of segments) {
    const part = decodeName(joinSegments(partSegments));
    if (part === undefined || !sameSegments(nameSegments(encodeName(part)), partSegments)) return undefined;
    parts.push(part);
  }
  return parts;
}

function joinSegments(segments: string[]): string {
  return segments
    .map((segment, index) => (index < segments.length - 1 ? segment.slice(0, -CONTINUED.length) : segment))
    .join("");
}

function sameSegments(left: string[], right: string[]): boolean {
  return left.length === right.length && left.every((segment, index) => segment === right[index]);
}
