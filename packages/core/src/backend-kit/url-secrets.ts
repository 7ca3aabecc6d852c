import { InvalidOptionError, type PersistErrorContext } from "../errors.js";

// Query parameters whose value is a password (as libpq and the drivers name them). An unencoded
// "&" or "=" in a password cannot be told from the next parameter, and a driver may show what
// follows as a parameter name or value: the rest of the query counts as secret, whole and in pieces.
const PASSWORD_PARAMETER = /[?&;](?:password|passwd|pass|pwd|secret|token|authtoken)=/i;
const ENCODING_HINT =
  'write "@", "/", "?", "#", "%", "&" and white space in a user name or password as %40, %2F, %3F, %23, %25, %26 and %20';

/**
 * The passwords a connection URL carries (its user info and password-like query parameters), as
 * written and decoded, for the `secrets` of every error a backend builds, so that a password is
 * redacted wherever a driver echoes it. A URL a driver could read in more than one way is refused
 * first with an {@link InvalidOptionError} that never shows the URL: an unencoded "@" in the user
 * info (or user info per host), an "@" after the host (an unencoded "/", "?" or "#" in a
 * password), white space or a "#" anywhere, or a "%" not followed by two hex digits in the user
 * info. A driver would otherwise take part of the password for a host name and show it in its
 * connection errors. A string that is not a `scheme://` URL carries no password here.
 * @example connectionUrlSecrets("postgres://bot:s%2Fcret@db:5432/app", context) // ["s%2Fcret", "s/cret"]
 */
export function connectionUrlSecrets(url: string, context: PersistErrorContext): string[] {
  const schemeEnd = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0].length;
  if (schemeEnd === undefined) return [];
  function refuse(problem: string): never {
    throw new InvalidOptionError(`the URL ${problem}. It is not shown, as it may hold a password; ${ENCODING_HINT}`, {
      ...context,
      outcome: "not-applied",
    });
  }
  if (/[\s\p{Cc}]/u.test(url)) refuse("holds white space or a control character");
  if (url.includes("#")) refuse('holds a "#"');
  const rest = url.slice(schemeEnd);
  const authorityEnd = rest.search(/[/?]/);
  const lastAt = rest.lastIndexOf("@");
  if (authorityEnd >= 0 && lastAt > authorityEnd) {
    refuse('has an "@" after its host (a password with an unencoded "/" or "?", or an "@" in its path or query)');
  }
  const userInfo = lastAt < 0 ? "" : rest.slice(0, lastAt);
  if (userInfo.includes("@")) refuse('has an unencoded "@" in its user info, or user info for more than one host');
  if (/%(?![0-9a-f]{2})/i.test(userInfo)) refuse('has a "%" in its user info that is not followed by two hex digits');
  const secrets = new Set<string>();
  const colon = userInfo.indexOf(":");
  if (colon >= 0) addSecret(secrets, userInfo.slice(colon + 1));
  let query = rest;
  for (let match = PASSWORD_PARAMETER.exec(query); match !== null; match = PASSWORD_PARAMETER.exec(query)) {
    query = query.slice(match.index + match[0].length);
    for (const part of [query, ...query.split(/[&;=]/)]) addSecret(secrets, part);
  }
  return [...secrets];
}

/**
 * The secrets of a backend's connection, for the `secrets` of its errors: those of every URL
 * given (each checked by {@link connectionUrlSecrets}, which refuses a URL a driver could misread)
 * and every password given as an option; each non-empty string once. Entries that are not
 * strings (an option left out) are skipped.
 * @example connectionSecrets("postgres", { urls: [options.connectionString], passwords: [options.poolConfig?.password] })
 */
export function connectionSecrets(
  backend: string,
  given: { readonly urls?: readonly unknown[]; readonly passwords?: readonly unknown[] },
): string[] {
  const context: PersistErrorContext = { backend, operation: "create" };
  const secrets = new Set<string>();
  for (const url of given.urls ?? []) {
    if (typeof url === "string") for (const secret of connectionUrlSecrets(url, context)) secrets.add(secret);
  }
  for (const password of given.passwords ?? [])
    if (typeof password === "string" && password !== "") secrets.add(password);
  return [...secrets];
}

function addSecret(secrets: Set<string>, written: string): void {
  if (written === "") return;
  secrets.add(written);
  try {
    secrets.add(decodeURIComponent(written.replaceAll("+", " ")));
    secrets.add(decodeURIComponent(written));
  } catch {
    // Not decodable: a driver reads it as written, if at all.
  }
}
