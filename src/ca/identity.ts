import { executeTemplate, MissingKeyError, TemplateError } from './go-template.ts';
import { stringifyClaim } from './go-format.ts';
import type { CompiledMetadata, CompiledTemplate } from './issuer-config.ts';
import { EXTENSION_FIELDS, OID, type ExtensionTemplateKey } from './oids.ts';
import { assertCanonicalUri, assertNoControl, encodeUriComponentValue, UnsafeClaimError } from './uri-safety.ts';
import type { SigstoreExtension } from './certificate.ts';

/** What goes into the certificate for one token. */
export interface CertificateIdentity {
  san: string;
  extensions: SigstoreExtension[];
}

/** One evaluated output, for `ci-oidc ca explain`. */
export interface TemplateTraceEntry {
  output: 'san' | ExtensionTemplateKey | 'issuer' | 'token-subject';
  oid?: string;
  template?: string;
  value?: string;
  omitted?: string;
  error?: string;
}

/**
 * A template could not be evaluated. `clientMessage` is what Fulcio answers: the raw template error for
 * `ci-provider`, the generic identity-token message for legacy principals and for our URI-safety refusals.
 */
export class IdentityError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly clientMessage: string,
  ) {
    super(message);
    this.name = 'IdentityError';
  }
}

export const IDENTITY_TOKEN_MESSAGE = 'There was an error processing the identity token';

export interface IdentityOptions {
  metadata: CompiledMetadata;
  /** Per-issuer overrides of the metadata defaults (ours). */
  defaultOverrides?: Readonly<Record<string, string>>;
  claims: Readonly<Record<string, unknown>>;
  iss: string;
  sub: string;
  /** Claims whose absence omits the extensions that use them (legacy principals' optional claims). */
  optionalClaims?: ReadonlySet<string>;
  /** Omit any extension whose claim is missing (ours, opt-in); the SAN is never optional. */
  lenient?: boolean;
  /** Legacy principals answer the generic identity-token message for every template problem. */
  legacy?: boolean;
  trace?: TemplateTraceEntry[];
}

const URI_KEYS = new Set(EXTENSION_FIELDS.filter((f) => f.uri).map((f) => f.key));

/** Claims stringified and merged over the defaults; claims win on a clash (Fulcio's ci-provider rule). */
export function templateData(metadata: CompiledMetadata, overrides: Readonly<Record<string, string>> | undefined, claims: Readonly<Record<string, unknown>>): Map<string, string> {
  const data = new Map(metadata.defaults);
  if (overrides) for (const [k, v] of Object.entries(overrides)) data.set(k, v);
  for (const [k, v] of Object.entries(claims)) {
    const s = stringifyClaim(v);
    if (s !== undefined) data.set(k, s);
  }
  return data;
}

type Escape = (value: string) => string;

function escapeFor(uri: boolean, what: string): Escape {
  return uri
    ? (v: string) => encodeUriComponentValue(v, what)
    : (v: string) => {
        assertNoControl(v, what);
        return v;
      };
}

// Built once per output at load: a closure or a message string per evaluation cost ~3 µs per certificate.
const SAN_ESCAPE = escapeFor(true, 'a claim used in the SAN');
const ESCAPE_BY_KEY = new Map(EXTENSION_FIELDS.map((f) => [f.key, escapeFor(URI_KEYS.has(f.key), `a claim used in ${f.key}`)]));

function evaluate(t: CompiledTemplate, data: ReadonlyMap<string, string>, escape: Escape, iss: string): string {
  if (t.parsed) return executeTemplate(t.parsed, data, { escape });
  const v = data.get(t.source);
  if (v === undefined) throw new MissingKeyError(`value <${t.source}> not present in either claims or defaults. Issuer: ${iss}`, t.source);
  return escape(v);
}

function fail(opts: IdentityOptions, err: unknown, output: TemplateTraceEntry['output'], template: string): never {
  if (err instanceof UnsafeClaimError) {
    opts.trace?.push({ output, template, error: err.message });
    throw new IdentityError(err.code, err.message, IDENTITY_TOKEN_MESSAGE);
  }
  if (err instanceof TemplateError) {
    opts.trace?.push({ output, template, error: err.message });
    throw new IdentityError(err instanceof MissingKeyError ? 'claim_missing' : 'template_failed', err.message, opts.legacy ? IDENTITY_TOKEN_MESSAGE : err.message);
  }
  throw err;
}

function tolerated(opts: IdentityOptions, err: unknown): string | undefined {
  if (!(err instanceof MissingKeyError)) return undefined;
  if (opts.optionalClaims?.has(err.key)) return `optional claim ${err.key} is absent`;
  if (opts.lenient) return `claim ${err.key} is absent (lenient)`;
  return undefined;
}

const FIELD_BY_KEY = new Map(EXTENSION_FIELDS.map((f) => [f.key, f]));

/** Evaluates the SAN and every extension template for a verified token (signing-ca.md §8.2). */
export function buildIdentity(opts: IdentityOptions): CertificateIdentity {
  const { metadata, iss, sub, trace } = opts;
  const data = templateData(metadata, opts.defaultOverrides, opts.claims);
  try {
    assertNoControl(iss, 'the token issuer');
    assertNoControl(sub, 'the token subject');
  } catch (err) {
    fail(opts, err, 'issuer', 'iss');
  }

  let san = '';
  try {
    san = evaluate(metadata.san, data, SAN_ESCAPE, iss);
    assertCanonicalUri(san, 'the certificate SAN', true);
    trace?.push({ output: 'san', template: metadata.san.source, value: san });
  } catch (err) {
    fail(opts, err, 'san', metadata.san.source);
  }

  const values = new Map<ExtensionTemplateKey, string>();
  for (const { key, template } of metadata.extensions) {
    const field = FIELD_BY_KEY.get(key)!;
    try {
      const v = evaluate(template, data, ESCAPE_BY_KEY.get(key)!, iss);
      if (v !== '' && URI_KEYS.has(key)) assertCanonicalUri(v, key, false);
      if (v === '') trace?.push({ output: key, oid: field.oid, template: template.source, omitted: 'empty value' });
      else {
        values.set(key, v);
        trace?.push({ output: key, oid: field.oid, template: template.source, value: v });
      }
    } catch (err) {
      const why = tolerated(opts, err);
      if (why === undefined) fail(opts, err, key, template.source);
      trace?.push({ output: key, oid: field.oid, template: template.source, omitted: why! });
    }
  }

  const extensions: SigstoreExtension[] = [{ oid: OID.issuer, raw: true, value: iss }];
  for (const f of EXTENSION_FIELDS) {
    if (!f.raw) continue;
    const v = values.get(f.key);
    if (v) extensions.push({ oid: f.oid, raw: true, value: v });
  }
  extensions.push({ oid: OID.issuerV2, raw: false, value: iss });
  for (const f of EXTENSION_FIELDS) {
    if (f.raw) continue;
    const v = values.get(f.key);
    if (v) extensions.push({ oid: f.oid, raw: false, value: v });
  }
  if (sub !== '') extensions.push({ oid: OID.tokenSubject, raw: false, value: sub });
  trace?.push({ output: 'issuer', oid: OID.issuerV2, value: iss }, { output: 'token-subject', oid: OID.tokenSubject, value: sub });
  return { san, extensions };
}
