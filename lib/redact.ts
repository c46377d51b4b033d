/**
 * Secrets never reach output, logs or errors. Everything user-visible passes
 * through `redactText`, which masks URL passwords and every secret registered
 * at run time (for example the embedded stack's generated passwords).
 */

const MASK = "***";
const registered = new Set<string>();

/** Registers a literal secret so that any later output masks it. */
export function registerSecret(secret: string | undefined): void {
  // Very short strings would mask ordinary words; generated secrets are long.
  if (secret !== undefined && secret.length >= 6) {
    registered.add(secret);
  }
}

/** `postgres://user:pw@host/db` → `postgres://user:***@host/db`. Non-URLs pass through. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") {
      parsed.password = MASK;
    }
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) {
        parsed.searchParams.set(key, MASK);
      }
    }
    // URL encodes the mask; keep it readable.
    return parsed.toString().replaceAll(encodeURIComponent(MASK), MASK);
  } catch {
    return redactText(url);
  }
}

// scheme://user:password@ inside free text (error messages from drivers, argv…)
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]+)@/gi;
// key=value pairs that libpq-style connection strings and configs use
const KEY_VALUE =
  /\b(password|passwd|pwd|requirepass|secret|token)(\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi;

export function redactText(text: string): string {
  let out = text
    .replace(URL_CREDENTIALS, `$1${MASK}@`)
    .replace(KEY_VALUE, `$1$2${MASK}`);
  for (const secret of registered) {
    out = out.split(secret).join(MASK);
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) {
      out = out.split(encoded).join(MASK);
    }
  }
  return out;
}

/** Deep copy of a JSON-like value with every string redacted. */
export function redactValue<T>(value: T): T {
  if (typeof value === "string") {
    return redactText(value) as T;
  }
  if (Array.isArray(value)) {
    return value.map((v: unknown) => redactValue(v)) as T;
  }
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = redactValue(v);
    }
    return out as T;
  }
  return value;
}
