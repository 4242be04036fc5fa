import { parseDocument } from 'yaml';
import { EXTENSION_FIELDS, type ExtensionTemplateKey } from './oids.ts';
import { isTemplate, parseTemplate, TemplateError, type ParsedTemplate } from './go-template.ts';

/**
 * Fulcio-format issuer configuration (`pkg/config/config.go`), JSON or YAML, with both key spellings
 * (`OIDCIssuers` / `oidc-issuers`, `IssuerURL` / `issuer-url`, ...). Validated completely at load time.
 */

export type CaIssuerType = 'ci-provider' | 'gitlab-pipeline' | 'github-workflow';
const SUPPORTED_TYPES = new Set<CaIssuerType>(['ci-provider', 'gitlab-pipeline', 'github-workflow']);
const FULCIO_OTHER_TYPES = new Set(['email', 'buildkite-job', 'codefresh-workflow', 'chainguard-identity', 'kubernetes', 'spiffe', 'uri', 'username']);

/** A `ci-provider` metadata entry: what providers export as their certificate template. */
export interface CiIssuerMetadata {
  defaultTemplateValues: Readonly<Record<string, string>>;
  extensionTemplates: Readonly<Partial<Record<ExtensionTemplateKey, string>>>;
  subjectAlternativeNameTemplate: string;
}

export interface CompiledTemplate {
  source: string;
  /** Set when the source contains `{{`; otherwise the source is a bare claim name. */
  parsed?: ParsedTemplate;
}

export interface CompiledMetadata {
  name: string;
  defaults: ReadonlyMap<string, string>;
  san: CompiledTemplate;
  extensions: ReadonlyArray<{ key: ExtensionTemplateKey; template: CompiledTemplate }>;
}

export interface CaIssuer {
  /** Exactly one of the two. */
  issuerUrl?: string;
  wildcardIssuerUrl?: string;
  clientId: string;
  type: CaIssuerType;
  ciProvider?: string;
  challengeClaim: string;
  caCert?: string;
  description?: string;
  contact?: string;
  environment?: string;
  /** ours: overrides of the metadata defaults, e.g. `url` for a self-managed GitLab. */
  defaultTemplateValues: Readonly<Record<string, string>>;
  /** ours: a policy `when` tree that must hold. */
  authorization?: unknown;
  /** ours: omit extensions whose claims are missing instead of refusing. */
  lenientClaims?: boolean;
  /** ours: offline keys, as verifier registrations allow. */
  staticJwks?: { keys: unknown[] };
  jwksUri?: string;
  algorithms?: string[];
  /** ours: verifier profile (gitlab, github, ci-oidc, generic...); derived from the type by default. */
  profile?: string;
  /** Meta issuers: the anchored pattern. */
  pattern?: RegExp;
}

export interface CaIssuerConfig {
  oidcIssuers: ReadonlyMap<string, CaIssuer>;
  metaIssuers: readonly CaIssuer[];
  metadata: ReadonlyMap<string, CompiledMetadata>;
}

export class IssuerConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid CA issuer configuration:\n  - ${issues.join('\n  - ')}`);
    this.name = 'IssuerConfigError';
  }
}

const norm = (k: string): string => k.toLowerCase().replace(/[-_]/g, '');

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Re-keys an object by normalised name, rejecting unknown and duplicate spellings. */
function normalise(raw: unknown, where: string, allowed: readonly string[], issues: string[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (!isObj(raw)) {
    issues.push(`${where}: expected a mapping`);
    return out;
  }
  const allowedNorm = new Set(allowed.map(norm));
  for (const [k, v] of Object.entries(raw)) {
    const n = norm(k);
    if (!allowedNorm.has(n)) {
      issues.push(`${where}: unknown key ${JSON.stringify(k)}`);
      continue;
    }
    if (out.has(n)) {
      issues.push(`${where}: key ${JSON.stringify(k)} is given twice (in two spellings)`);
      continue;
    }
    out.set(n, v);
  }
  return out;
}

const ISSUER_KEYS = [
  'IssuerURL',
  'ClientID',
  'Type',
  'CIProvider',
  'ChallengeClaim',
  'CACert',
  'Description',
  'Contact',
  'Environment',
  'IssuerClaim',
  'SubjectDomain',
  'SPIFFETrustDomain',
  'SkipEmailVerification',
  'DefaultTemplateValues',
  'Authorization',
  'LenientClaims',
  'StaticJWKS',
  'JWKSURI',
  'Algorithms',
  'Profile',
];

function str(m: Map<string, unknown>, key: string, where: string, issues: string[]): string | undefined {
  const v = m.get(norm(key));
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    issues.push(`${where}.${key}: expected a string`);
    return undefined;
  }
  return v;
}

function stringMap(v: unknown, where: string, issues: string[]): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) {
    issues.push(`${where}: expected a mapping of strings`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') issues.push(`${where}.${k}: expected a string`);
    else out[k] = val;
  }
  return out;
}

/** Go regexp.QuoteMeta, then each `*` becomes one path-safe label, anchored (GHSA-59jp-pj84-45mr). */
export function metaIssuerPattern(wildcard: string): RegExp {
  const quoted = wildcard.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
  return new RegExp('^' + quoted.replace(/\\\*/g, '[-_a-zA-Z0-9]+') + '$');
}

function compileTemplate(source: string, where: string, issues: string[]): CompiledTemplate {
  if (!isTemplate(source)) return { source };
  try {
    return { source, parsed: parseTemplate(source) };
  } catch (err) {
    issues.push(`${where}: template does not parse: ${err instanceof TemplateError ? err.message : String(err)}`);
    return { source };
  }
}

const EXT_BY_NORM = new Map(EXTENSION_FIELDS.flatMap((f) => [[norm(f.key), f.key] as const, [norm(f.goName), f.key] as const]));

function compileMetadata(name: string, raw: unknown, where: string, issues: string[]): CompiledMetadata | undefined {
  const m = normalise(raw, where, ['DefaultTemplateValues', 'ExtensionTemplates', 'SubjectAlternativeNameTemplate'], issues);
  const defaults = stringMap(m.get(norm('DefaultTemplateValues')), `${where}.DefaultTemplateValues`, issues);
  const sanSource = m.get(norm('SubjectAlternativeNameTemplate'));
  if (typeof sanSource !== 'string' || sanSource.trim() === '') {
    issues.push(`${where}.SubjectAlternativeNameTemplate: required (a template such as "https://{{ .ci_config_ref_uri }}")`);
    return undefined;
  }
  const extRaw = m.get(norm('ExtensionTemplates'));
  const extensions: Array<{ key: ExtensionTemplateKey; template: CompiledTemplate }> = [];
  const byKey = new Map<ExtensionTemplateKey, string>();
  if (extRaw !== undefined && extRaw !== null) {
    if (!isObj(extRaw)) issues.push(`${where}.ExtensionTemplates: expected a mapping`);
    else {
      for (const [k, v] of Object.entries(extRaw)) {
        const key = EXT_BY_NORM.get(norm(k));
        if (!key) {
          issues.push(`${where}.ExtensionTemplates: unknown extension ${JSON.stringify(k)} (the OID set is Fulcio's; issuer is always the token's iss)`);
          continue;
        }
        if (typeof v !== 'string') {
          issues.push(`${where}.ExtensionTemplates.${k}: expected a string`);
          continue;
        }
        if (byKey.has(key)) issues.push(`${where}.ExtensionTemplates: ${k} is given twice`);
        byKey.set(key, v);
      }
    }
  }
  for (const f of EXTENSION_FIELDS) {
    const src = byKey.get(f.key);
    if (src === undefined || src.trim() === '') continue;
    extensions.push({ key: f.key, template: compileTemplate(src, `${where}.ExtensionTemplates.${f.key}`, issues) });
  }
  return {
    name,
    defaults: new Map(Object.entries(defaults)),
    san: compileTemplate(sanSource, `${where}.SubjectAlternativeNameTemplate`, issues),
    extensions,
  };
}

/** Compiles a provider's built-in certificate template (a programming error if it does not parse). */
export function compileBuiltinMetadata(name: string, meta: CiIssuerMetadata): CompiledMetadata {
  const issues: string[] = [];
  const compiled = compileMetadata(
    name,
    {
      DefaultTemplateValues: meta.defaultTemplateValues,
      ExtensionTemplates: meta.extensionTemplates,
      SubjectAlternativeNameTemplate: meta.subjectAlternativeNameTemplate,
    },
    `built-in metadata ${name}`,
    issues,
  );
  if (!compiled || issues.length) throw new IssuerConfigError(issues);
  return compiled;
}

function compileIssuer(key: string, raw: unknown, meta: boolean, where: string, metadata: ReadonlyMap<string, CompiledMetadata>, issues: string[]): CaIssuer | undefined {
  const m = normalise(raw, where, ISSUER_KEYS, issues);
  const before = issues.length;
  const issuerUrlField = str(m, 'IssuerURL', where, issues);
  const type = str(m, 'Type', where, issues);
  const clientId = str(m, 'ClientID', where, issues) ?? '';
  if (!clientId) issues.push(`${where}.ClientID: required (Fulcio uses "sigstore")`);
  if (!type) issues.push(`${where}.Type: required (ci-provider, gitlab-pipeline or github-workflow)`);
  else if (!SUPPORTED_TYPES.has(type as CaIssuerType)) {
    issues.push(
      `${where}.Type: unsupported issuer type ${JSON.stringify(type)}${FULCIO_OTHER_TYPES.has(type) ? ' (a Fulcio type this CA does not issue for)' : ''}; use ci-provider, gitlab-pipeline or github-workflow`,
    );
  }
  if (!meta && issuerUrlField !== undefined && issuerUrlField !== key) {
    issues.push(`${where}.IssuerURL: ${JSON.stringify(issuerUrlField)} differs from its key ${JSON.stringify(key)}; they must be byte-identical`);
  }
  const url = meta ? key : key;
  let parsedUrl: URL | undefined;
  try {
    parsedUrl = new URL(meta ? url.replace(/\*/g, 'x') : url);
  } catch {
    issues.push(`${where}: ${JSON.stringify(url)} is not a URL`);
  }
  if (parsedUrl) {
    // Plain http only for a loopback issuer (development and the demo), the issuer's own rule.
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(parsedUrl.hostname);
    if (parsedUrl.protocol !== 'https:' && !(parsedUrl.protocol === 'http:' && loopback && !meta)) {
      issues.push(`${where}: issuer URLs must be https, or http on loopback for development (${JSON.stringify(url)})`);
    }
    if (parsedUrl.username || parsedUrl.password || parsedUrl.search || parsedUrl.hash || url.includes('#')) {
      issues.push(`${where}: issuer URLs carry no userinfo, query or fragment (${JSON.stringify(url)})`);
    }
  }
  const ciProvider = str(m, 'CIProvider', where, issues);
  if (type === 'ci-provider') {
    if (!ciProvider) issues.push(`${where}.CIProvider: required for type ci-provider (a key of CIIssuerMetadata, e.g. gitlab-pipeline)`);
    else if (!metadata.has(ciProvider)) issues.push(`${where}.CIProvider: no CIIssuerMetadata entry named ${JSON.stringify(ciProvider)}`);
  }
  const environment = str(m, 'Environment', where, issues);
  if (environment !== undefined && environment !== '' && environment !== 'staging' && environment !== 'production') {
    issues.push(`${where}.Environment: must be staging or production`);
  }
  const challengeClaim = str(m, 'ChallengeClaim', where, issues) || 'sub';
  const lenient = m.get(norm('LenientClaims'));
  if (lenient !== undefined && typeof lenient !== 'boolean') issues.push(`${where}.LenientClaims: expected true or false`);
  const staticJwks = m.get(norm('StaticJWKS'));
  if (staticJwks !== undefined && !(isObj(staticJwks) && Array.isArray(staticJwks.keys))) issues.push(`${where}.StaticJWKS: expected {"keys": [...]}`);
  const algorithms = m.get(norm('Algorithms'));
  if (algorithms !== undefined && !(Array.isArray(algorithms) && algorithms.every((a) => typeof a === 'string'))) {
    issues.push(`${where}.Algorithms: expected a list of JWS algorithm names`);
  }
  const defaultTemplateValues = stringMap(m.get(norm('DefaultTemplateValues')), `${where}.DefaultTemplateValues`, issues);
  if (issues.length > before) return undefined;
  const caCert = str(m, 'CACert', where, issues);
  const description = str(m, 'Description', where, issues);
  const contact = str(m, 'Contact', where, issues);
  const jwksUri = str(m, 'JWKSURI', where, issues);
  const profile = str(m, 'Profile', where, issues);
  const issuer: CaIssuer = {
    clientId,
    type: type as CaIssuerType,
    challengeClaim,
    defaultTemplateValues,
    ...(meta ? { wildcardIssuerUrl: key, pattern: metaIssuerPattern(key) } : { issuerUrl: key }),
    ...(ciProvider !== undefined ? { ciProvider } : {}),
    ...(caCert !== undefined ? { caCert } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(contact !== undefined ? { contact } : {}),
    ...(environment ? { environment } : {}),
    ...(m.has(norm('Authorization')) ? { authorization: m.get(norm('Authorization')) } : {}),
    ...(typeof lenient === 'boolean' ? { lenientClaims: lenient } : {}),
    ...(staticJwks !== undefined ? { staticJwks: staticJwks as { keys: unknown[] } } : {}),
    ...(jwksUri !== undefined ? { jwksUri } : {}),
    ...(algorithms !== undefined ? { algorithms: algorithms as string[] } : {}),
    ...(profile !== undefined ? { profile } : {}),
  };
  return issuer;
}

/**
 * Compiles a Fulcio-format document. `builtins` are the providers' certificate templates; entries of the
 * document's `CIIssuerMetadata` with the same name replace them.
 */
export function compileIssuerConfig(doc: unknown, builtins: ReadonlyMap<string, CompiledMetadata> = new Map()): CaIssuerConfig {
  const issues: string[] = [];
  const top = normalise(doc ?? {}, 'config', ['OIDCIssuers', 'MetaIssuers', 'CIIssuerMetadata', 'define'], issues);
  const metadata = new Map(builtins);
  const metaRaw = top.get(norm('CIIssuerMetadata'));
  if (metaRaw !== undefined && metaRaw !== null) {
    if (!isObj(metaRaw)) issues.push('CIIssuerMetadata: expected a mapping');
    else {
      for (const [name, raw] of Object.entries(metaRaw)) {
        const c = compileMetadata(name, raw, `CIIssuerMetadata.${name}`, issues);
        if (c) metadata.set(name, c);
      }
    }
  }
  const oidcIssuers = new Map<string, CaIssuer>();
  const oidcRaw = top.get(norm('OIDCIssuers'));
  if (oidcRaw !== undefined && oidcRaw !== null) {
    if (!isObj(oidcRaw)) issues.push('OIDCIssuers: expected a mapping of issuer URL to issuer');
    else {
      for (const [url, raw] of Object.entries(oidcRaw)) {
        const i = compileIssuer(url, raw, false, `OIDCIssuers[${JSON.stringify(url)}]`, metadata, issues);
        if (i) oidcIssuers.set(url, i);
      }
    }
  }
  const metaIssuers: CaIssuer[] = [];
  const metaIssuersRaw = top.get(norm('MetaIssuers'));
  if (metaIssuersRaw !== undefined && metaIssuersRaw !== null) {
    if (!isObj(metaIssuersRaw)) issues.push('MetaIssuers: expected a mapping of wildcard URL to issuer');
    else {
      for (const [url, raw] of Object.entries(metaIssuersRaw)) {
        if (!url.includes('*')) issues.push(`MetaIssuers[${JSON.stringify(url)}]: a meta issuer needs at least one "*"`);
        const i = compileIssuer(url, raw, true, `MetaIssuers[${JSON.stringify(url)}]`, metadata, issues);
        if (i) metaIssuers.push(i);
      }
    }
  }
  if (issues.length) throw new IssuerConfigError(issues);
  return { oidcIssuers, metaIssuers, metadata };
}

/** Parses JSON or YAML text (duplicate keys rejected) and compiles it. */
export function parseIssuerConfigText(text: string, builtins?: ReadonlyMap<string, CompiledMetadata>, origin = 'issuer config'): CaIssuerConfig {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new IssuerConfigError(doc.errors.map((e) => `${origin}: ${e.message.split('\n')[0]}`));
  return compileIssuerConfig(doc.toJS({ maxAliasCount: 100 }), builtins);
}

/** Exact key first, then meta patterns in declaration order. No network I/O either way. */
export function findIssuer(config: CaIssuerConfig, iss: string): CaIssuer | undefined {
  const exact = config.oidcIssuers.get(iss);
  if (exact) return exact;
  return config.metaIssuers.find((m) => m.pattern!.test(iss));
}

/** `GET /api/v2/configuration` entries, protojson with unpopulated fields emitted. */
export function configurationIssuers(config: CaIssuerConfig): Array<Record<string, unknown>> {
  const entry = (i: CaIssuer): Record<string, unknown> => ({
    ...(i.issuerUrl !== undefined ? { issuerUrl: i.issuerUrl } : { wildcardIssuerUrl: i.wildcardIssuerUrl }),
    audience: i.clientId,
    challengeClaim: i.challengeClaim,
    spiffeTrustDomain: '',
    issuerType: i.type,
    subjectDomain: '',
    skipEmailVerification: false,
  });
  return [...[...config.oidcIssuers.values()].map(entry), ...config.metaIssuers.map(entry)];
}
