import { InvalidOptionError, type PersistErrorContext } from "@persist-kit/core";

/** What a `redis://` or `rediss://` URL says: the ioredis options it stands for. */
export interface RedisUrlSettings {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  family?: 4 | 6;
  /** True for `rediss://`. */
  tls: boolean;
}

// The query parameters a URL may carry; anything else belongs in `redisOptions`.
const QUERY_PARAMETERS = new Set(["db", "password", "username", "family"]);
const DEFAULT_PORT = 6379;
const HOST_NAME = /^[A-Za-z0-9._-]+$/;
const IPV6_HOST = /^\[[0-9A-Fa-f:.]+\]$/;
const ENCODING_HINT =
  'write "/", "?", "#", "@" and "%" in a user name or password as %2F, %3F, %23, %40 and %25, and ":" in a user name as %3A';

/**
 * Reads a `redis://` or `rediss://` URL: `redis[s]://[[user][:password]@]host[:port][/db]`, with
 * optional `?db=`, `?password=`, `?username=`, `?family=`. Strict, so that no part of a password
 * can end up as a host, port or database number (where connection errors would show it): a URL
 * that does not fit is refused with an {@link InvalidOptionError} that names what is wrong and
 * never the URL itself, nor any error that holds it.
 * @example redisUrlSettings("redis://:s%2Fcret@10.0.0.5:6380/2") // { host: "10.0.0.5", port: 6380, password: "s/cret", db: 2, tls: false }
 */
export function redisUrlSettings(url: string, context: PersistErrorContext): RedisUrlSettings {
  function refuse(problem: string): never {
    throw new InvalidOptionError(
      `url is not a redis URL (redis[s]://[[user][:password]@]host[:port][/db][?option=value]): ${problem}. ` +
        `The URL is not shown, as it may hold a password; ${ENCODING_HINT}`,
      context,
    );
  }
  const scheme = /^(rediss?):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) refuse("it does not start with redis:// or rediss://");
  if (url.includes("#")) refuse('it holds a "#" (a URL fragment)');
  if (namesSeveralServers(url)) {
    refuse('it names more than one server (a cluster\'s nodes go in clusterNodes), or its password holds "@" and ","');
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The parser's own error is dropped: it holds the URL.
    return refuse("it does not parse as a URL (is the port a number?)");
  }
  const host = parsed.hostname;
  if (host === "") refuse("it names no host");
  if (!HOST_NAME.test(host) && !IPV6_HOST.test(host)) refuse("its host is not a host name or IP address");
  const hasPath = !/^\/?$/.test(parsed.pathname);
  const db = /^\/(\d{1,9})$/.exec(parsed.pathname)?.[1];
  if (hasPath && db === undefined) refuse("its path is not a database number");
  const settings: RedisUrlSettings = {
    host: IPV6_HOST.test(host) ? host.slice(1, -1) : host,
    port: parsed.port === "" ? DEFAULT_PORT : Number(parsed.port),
    tls: scheme === "rediss",
  };
  if (db !== undefined) settings.db = Number(db);
  const username = decoded(parsed.username, refuse);
  const password = decoded(parsed.password, refuse);
  if (username !== "") settings.username = username;
  if (password !== "") settings.password = password;
  readQuery(parsed.searchParams, settings, refuse);
  return settings;
}

// `host1:port1,host2:port2` after the user info, or `user:password@host1,user:password@host2`
// (which the URL parser would read as one password up to the last "@"). The authority is what
// the URL parser takes: after the scheme, up to the first "/" or "?".
function namesSeveralServers(url: string): boolean {
  const authority = url.slice(url.indexOf("//") + 2).split(/[/?]/, 1)[0] ?? "";
  const server = authority.slice(authority.lastIndexOf("@") + 1);
  return server.includes(",") || /@.*,/.test(authority.slice(0, authority.lastIndexOf("@")));
}

function decoded(text: string, refuse: (problem: string) => never): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return refuse('its user name or password holds a "%" that is not followed by two hex digits');
  }
}

// A value in the path or user info wins over the same one in the query (as in ioredis).
function readQuery(query: URLSearchParams, settings: RedisUrlSettings, refuse: (problem: string) => never): void {
  const seen = new Set<string>();
  for (const [name, value] of query) {
    // The name is never shown: a "?" in a password puts the rest of it here.
    if (!QUERY_PARAMETERS.has(name)) refuse("it has a query parameter other than db, password, username and family");
    if (seen.has(name)) refuse(`its query parameter ${name} is given twice (is there a "&" in a password?)`);
    seen.add(name);
    if (name === "password") {
      if (value !== "") settings.password ??= value;
    } else if (name === "username") {
      if (value !== "") settings.username ??= value;
    } else if (name === "db") {
      if (!/^\d{1,9}$/.test(value)) refuse("its query parameter db is not a database number");
      settings.db ??= Number(value);
    } else if (value === "4" || value === "6") settings.family = value === "4" ? 4 : 6;
    else refuse("its query parameter family is not 4 or 6");
  }
}
