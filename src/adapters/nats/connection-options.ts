/**
 * How every ringkv process (node, CLI, client library, bench) turns flags and the environment into
 * the nats.js options that authenticate it to NATS and secure the connection with TLS. One place,
 * so a server that needs user/password, a token, an nkey, a creds file or TLS works for all of them
 * alike, and so secrets are redacted the same way everywhere.
 *
 * The environment variables are the nats CLI's (NATS_URL, NATS_USER, NATS_PASSWORD, NATS_TOKEN,
 * NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT, NATS_KEY), so an operator who has a working `nats`
 * context exported can use ringkv unchanged; the inbox prefix, which the nats CLI takes only as a
 * flag or a context field, is RINGKV_INBOX_PREFIX. A flag wins over its variable.
 */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type TlsOptions } from '@nats-io/transport-node';

/** What a user may say about how to reach and authenticate to NATS: flags, or library options. */
export interface NatsAuthSettings {
  /** Comma-separated server URLs; a `nats://user:pass@host` URL carries user/password. */
  servers?: string;
  user?: string;
  password?: string;
  token?: string;
  /** Path of a file holding an nkey seed (SU...). */
  nkeyFile?: string;
  /** Path of a creds file (user JWT and seed, as nsc writes it). */
  credsFile?: string;
  /** Path of a CA certificate (PEM) to verify the server with; implies TLS. */
  caFile?: string;
  /** Path of a client certificate (PEM); needs `keyFile`; implies TLS. */
  certFile?: string;
  keyFile?: string;
  /**
   * Where this process's replies arrive (nats.js `inboxPrefix`; default `_INBOX`). A secured NATS
   * gives each role (or user) an inbox family of its own that only it may subscribe to, so no client
   * reads answers meant for another (README "Security"). Must be `_INBOX` or start with `_INBOX`
   * followed by `_`, `-` or `.`: nodes answer only reply subjects of that family (isInboxSubject).
   */
  inboxPrefix?: string;
}

/** The environment variables the nats CLI reads, mapped onto the settings. */
export const natsEnvironmentVariables = {
  servers: 'NATS_URL',
  user: 'NATS_USER',
  password: 'NATS_PASSWORD',
  token: 'NATS_TOKEN',
  nkeyFile: 'NATS_NKEY',
  credsFile: 'NATS_CREDS',
  caFile: 'NATS_CA',
  certFile: 'NATS_CERT',
  keyFile: 'NATS_KEY',
  inboxPrefix: 'RINGKV_INBOX_PREFIX',
} as const satisfies Record<keyof NatsAuthSettings, string>;

export const defaultNatsUrl = 'nats://127.0.0.1:4222';

/** nats.js's own inbox prefix, what a process uses unless told otherwise. */
export const defaultInboxPrefix = '_INBOX';

/**
 * An inbox prefix ringkv accepts: `_INBOX`, or `_INBOX` joined by `_`, `-` or `.` to more subject
 * tokens (`_INBOX_client`, `_INBOX_client_alice`), no wildcards, no empty token, at most 128 characters.
 */
export const inboxPrefixPattern = /^_INBOX(?:[_.-][A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)?$/;
const inboxPrefixCharsMax = 128;

/**
 * Whether a subject is a reply inbox ringkv answers on: the `_INBOX` family every prefix above
 * belongs to. A publisher chooses the reply subject of its request and NATS does not check it
 * against the publisher's permissions, so without this a client could make a node publish its
 * answers onto the cluster's own subjects (an admin or node subject, where only nodes may publish).
 */
export function isInboxSubject(subject: string): boolean {
  if (!subject.startsWith(defaultInboxPrefix)) return false;
  const next = subject.charCodeAt(defaultInboxPrefix.length);
  // '.', '_' or '-': `_INBOX.x`, `_INBOX_client.x`; a bare `_INBOX` is no reply subject.
  return next === 0x2e || next === 0x5f || next === 0x2d;
}

/** The prefix as given, checked: a clear BAD_REQUEST rather than nats.js's error at connect. */
export function checkInboxPrefix(prefix: string): string {
  if (prefix.length > inboxPrefixCharsMax || !inboxPrefixPattern.test(prefix)) {
    throw new NatsSettingsError(
      `Not an inbox prefix ringkv can use: ${JSON.stringify(prefix.slice(0, inboxPrefixCharsMax))} (give _INBOX, or _INBOX followed by _, - or . and subject tokens, e.g. _INBOX_client; no wildcards; at most ${inboxPrefixCharsMax} characters).`,
    );
  }
  return prefix;
}

/**
 * The inbox prefix a connection was made with (nats.js keeps it in its options, which the
 * NatsConnection interface does not expose), for code handed a connection it did not make.
 */
export function inboxPrefixOf(nc: object): string {
  const prefix = (nc as { options?: { inboxPrefix?: unknown } }).options?.inboxPrefix;
  return typeof prefix === 'string' && prefix !== '' ? prefix : defaultInboxPrefix;
}

/** A setting that cannot be used as given (a file that cannot be read, a cert without a key). */
export class NatsSettingsError extends Error {
  override readonly name = 'NatsSettingsError';
  readonly code = 'BAD_REQUEST';
}

/** Flags win over the environment; an empty string counts as unset. */
export function mergeNatsSettings(flags: NatsAuthSettings, env: Record<string, string | undefined>): NatsAuthSettings {
  const out: NatsAuthSettings = {};
  for (const key of Object.keys(natsEnvironmentVariables) as (keyof NatsAuthSettings)[]) {
    const value = nonEmpty(flags[key]) ?? nonEmpty(env[natsEnvironmentVariables[key]]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

type ReadFile = (path: string) => string;
const readUtf8: ReadFile = (path) => readFileSync(path, 'utf8');

/**
 * The nats.js connection options for these settings. Credentials in a URL are taken out of it
 * (nats.js would otherwise send them only on some paths and echo the URL in its errors), and a
 * `tls://` URL makes TLS required rather than merely accepted.
 */
export function natsConnectionOptions(settings: NatsAuthSettings, readFile: ReadFile = readUtf8): ConnectionOptions {
  const servers: string[] = [];
  let urlUser: string | undefined;
  let urlPassword: string | undefined;
  let tlsRequired = false;
  for (const raw of (settings.servers ?? defaultNatsUrl).split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const parsed = parseServerUrl(raw);
    servers.push(parsed.url);
    urlUser ??= parsed.user;
    urlPassword ??= parsed.password;
    if (parsed.tls) tlsRequired = true;
  }
  const opts: ConnectionOptions = { servers };
  const user = settings.user ?? urlUser;
  const password = settings.password ?? urlPassword;
  if (settings.credsFile !== undefined) {
    const creds = readSecretFile(settings.credsFile, 'creds file', readFile);
    opts.authenticator = credsAuthenticator(new TextEncoder().encode(creds));
  } else if (settings.nkeyFile !== undefined) {
    const seed = readSecretFile(settings.nkeyFile, 'nkey seed file', readFile).trim();
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  } else if (settings.token !== undefined) {
    opts.token = settings.token;
  } else if (user !== undefined) {
    opts.user = user;
    if (password !== undefined) opts.pass = password;
  }
  if (settings.inboxPrefix !== undefined) opts.inboxPrefix = checkInboxPrefix(settings.inboxPrefix);
  const tls = tlsOptions(settings, readFile);
  if (tls !== undefined) opts.tls = tls;
  else if (tlsRequired) opts.tls = {};
  return opts;
}

function tlsOptions(settings: NatsAuthSettings, readFile: ReadFile): TlsOptions | undefined {
  if (settings.caFile === undefined && settings.certFile === undefined && settings.keyFile === undefined) return undefined;
  if ((settings.certFile === undefined) !== (settings.keyFile === undefined)) {
    throw new NatsSettingsError('A client certificate needs its key and a key its certificate: give both --tls-cert and --tls-key (NATS_CERT and NATS_KEY).');
  }
  const tls: TlsOptions = {};
  // Read the files here, not in nats.js, so a missing file is a clear error before any connection.
  if (settings.caFile !== undefined) tls.ca = readSecretFile(settings.caFile, 'CA certificate', readFile);
  if (settings.certFile !== undefined) tls.cert = readSecretFile(settings.certFile, 'client certificate', readFile);
  if (settings.keyFile !== undefined) tls.key = readSecretFile(settings.keyFile, 'client key', readFile);
  // With a client certificate, TLS 1.2 at most: in TLS 1.3 the server judges the certificate after
  // the handshake has finished, and nats.js loses its refusal and reports a connect timeout, which
  // would read as "NATS unreachable"; in TLS 1.2 the refusal is a handshake alert (bad certificate),
  // reported at once and told apart as NATS_AUTH.
  if (tls.cert !== undefined) (tls as TlsOptions & { maxVersion?: string }).maxVersion = 'TLSv1.2';
  return tls;
}

function readSecretFile(path: string, what: string, readFile: ReadFile): string {
  try {
    return readFile(path);
  } catch (err) {
    // The path is not a secret; the file's content is, and it is never part of the message.
    const reason = (err as { code?: string }).code ?? 'unreadable';
    throw new NatsSettingsError(`Cannot read the ${what} at ${path} (${reason}).`);
  }
}

interface ParsedServerUrl {
  /** The URL without credentials, as nats.js is given it. */
  url: string;
  user?: string;
  password?: string;
  tls: boolean;
}

function parseServerUrl(raw: string): ParsedServerUrl {
  const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `nats://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new NatsSettingsError(`Not a NATS server URL: ${redactUrl(raw)}`);
  }
  const tls = u.protocol === 'tls:';
  const user = u.username === '' ? undefined : decodeURIComponent(u.username);
  const password = u.password === '' ? undefined : decodeURIComponent(u.password);
  // nats.js takes host:port; tls:// is expressed by the tls option, not the scheme.
  const url = `${u.hostname.includes(':') ? `[${u.hostname}]` : u.hostname}:${u.port === '' ? '4222' : u.port}`;
  return { url, ...(user !== undefined ? { user } : {}), ...(password !== undefined ? { password } : {}), tls };
}

/** A server URL (or a comma-separated list) with any user and password replaced by `***`, for logs and errors. */
export function redactUrl(servers: string): string {
  return servers.replace(/([a-z]+:\/\/)[^/@\s,]*@/gi, '$1***@');
}

/** Every secret value in these settings, so an error message can be scrubbed of them. */
export function secretsOf(settings: NatsAuthSettings): string[] {
  const secrets: string[] = [];
  if (settings.password !== undefined) secrets.push(settings.password);
  if (settings.token !== undefined) secrets.push(settings.token);
  for (const raw of (settings.servers ?? '').split(',')) {
    const m = /^[a-z]+:\/\/([^/@\s]*)@/i.exec(raw.trim());
    const pass = m?.[1]?.split(':')[1];
    if (pass) secrets.push(pass, decodeURIComponent(pass));
  }
  return secrets.filter((s) => s.length > 0);
}

/** A message with each secret replaced by `***` and URLs with credentials redacted. */
export function redactSecrets(message: string, secrets: string[]): string {
  let out = redactUrl(message);
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

/** TLS alerts a server sends when it does not accept the client's certificate. */
const tlsRefusalCodes = new Set(['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED']);

/**
 * Whether an error says NATS refused this process's credentials (nats.js AuthorizationError, the
 * server's "Authorization Violation", an expired user JWT). These exit with their own code: unlike
 * NO_CLUSTER, waiting or retrying will not help; the credentials must change.
 */
export function isNatsAuthRefused(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const { name, message } = e as { name?: unknown; message?: unknown };
    if (name === 'AuthorizationError' || name === 'UserAuthenticationExpiredError') return true;
    // The server refused the client certificate (not one of its CA's, or none given).
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && tlsRefusalCodes.has(code)) return true;
    if (typeof message === 'string' && /authorization violation|authentication (expired|timeout)|user authentication/i.test(message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
