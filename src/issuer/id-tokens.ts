import { Document, LineCounter, Pair, YAMLMap, isAlias, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { CiOidcError } from '../server/errors.ts';
import { assertValidDefinition, type ClaimDefinition } from './custom-claims.ts';

/** One `id_tokens.<NAME>` entry (issuer.md §4). `aud` keeps its YAML shape: string or list. */
export interface IdTokenSpec {
  name: string;
  aud: string | string[];
  lifetime?: number;
  jwtClaims: ClaimDefinition[];
  /** `file:line:col` of the entry, for messages. */
  where: string;
}

export interface JobTokenConfig {
  jobName: string;
  idTokens: IdTokenSpec[];
  /** Where `id_tokens` came from: the job (or its `extends`), `default:`, or nowhere. */
  idTokensSource: 'job' | 'default' | 'none';
  jwtClaims: ClaimDefinition[];
  onDemand?: boolean;
}

export const MAX_ID_TOKENS = 20;
export const MAX_AUDIENCES = 10;
export const MAX_AUDIENCE_LENGTH = 512;
export const MIN_LIFETIME = 60;
export const MAX_CI_CONFIG_BYTES = 1024 * 1024;
const TOKEN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const PREDEFINED_PREFIXES = ['CI_', 'GITLAB_', 'ACTIONS_', 'CHAT_', 'TRIGGER_', 'RUNNER_', 'FF_', 'DOCKER_', 'KUBECONFIG'];
const PREDEFINED_NAMES = new Set(['HOME', 'PATH', 'PWD', 'SHELL', 'USER', 'HOSTNAME']);
const ENTRY_KEYS = new Set(['aud', 'lifetime', 'jwt_claims']);
const GLOBAL_KEYWORDS = new Set(['default', 'include', 'stages', 'variables', 'workflow', 'image', 'services', 'cache', 'before_script', 'after_script', 'spec', 'pages:deploy']);
const MAX_EXTENDS_DEPTH = 11;

export function configError(where: string, message: string): CiOidcError {
  return new CiOidcError('id_token_config_error', `${where}: ${message}`);
}

export function isPredefinedVariableName(name: string): boolean {
  return PREDEFINED_NAMES.has(name) || PREDEFINED_PREFIXES.some((p) => name.startsWith(p));
}

/** A parsed CI configuration that remembers source positions. */
export class CiConfig {
  readonly file: string;
  private readonly doc: Document;
  private readonly lines: LineCounter | undefined;

  private constructor(file: string, doc: Document, lines?: LineCounter) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
  }

  static parse(text: string, file = '.gitlab-ci.yml'): CiConfig {
    if (Buffer.byteLength(text, 'utf8') > MAX_CI_CONFIG_BYTES) throw configError(file, `the CI configuration is larger than ${String(MAX_CI_CONFIG_BYTES)} bytes`);
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, merge: true, prettyErrors: false });
    const first = doc.errors[0];
    if (first) {
      const pos = lines.linePos(first.pos[0]);
      throw configError(`${file}:${String(pos.line)}:${String(pos.col)}`, `YAML syntax error: ${first.message.split('\n')[0] ?? ''}`);
    }
    if (doc.contents !== null && !isMap(doc.contents)) throw configError(`${file}:1:1`, 'the CI configuration must be a mapping of jobs and keywords');
    return new CiConfig(file, doc, lines);
  }

  /** The job API may send just the `id_tokens` (and job keywords) as JSON. */
  static fromJobObject(job: unknown, jobName: string, file = 'request'): CiConfig {
    const doc = new Document({ [jobName]: job });
    return new CiConfig(file, doc);
  }

  where(node: Node | null | undefined, path: string): string {
    const offset = node?.range?.[0];
    if (offset !== undefined && this.lines) {
      const pos = this.lines.linePos(offset);
      return `${this.file}:${String(pos.line)}:${String(pos.col)}: ${path}`;
    }
    return `${this.file}: ${path}`;
  }

  /** Follows a YAML alias (`*anchor`) to its node. */
  private deref<T extends Node | null | undefined>(node: T): T {
    return (isAlias(node) ? (node.resolve(this.doc) as T) : node);
  }

  jobNames(): string[] {
    const root = this.doc.contents;
    if (!isMap(root)) return [];
    return root.items
      .map((p) => (isScalar(p.key) ? String(p.key.value) : ''))
      .filter((k) => k !== '' && !GLOBAL_KEYWORDS.has(k) && !k.startsWith('.') && isMap(this.doc.get(k, true)));
  }

  jobTokenConfig(jobName: string): JobTokenConfig {
    const root = this.doc.contents;
    if (!isMap(root)) throw configError(this.file, `job ${JSON.stringify(jobName)} not found: the CI configuration is empty`);
    if (GLOBAL_KEYWORDS.has(jobName) || jobName.startsWith('.')) throw configError(this.file, `${JSON.stringify(jobName)} is not a runnable job`);
    const job = this.deref(root.get(jobName, true) as Node | undefined);
    if (!isMap(job)) throw configError(this.file, `job ${JSON.stringify(jobName)} not found in the CI configuration`);
    const chain = this.extendsChain(root, jobName, job);

    const own = this.resolvedKey(chain, 'id_tokens');
    let idTokens: IdTokenSpec[] = [];
    let source: JobTokenConfig['idTokensSource'] = 'none';
    if (own) {
      idTokens = this.parseIdTokens(own.node, `${own.owner}.id_tokens`);
      source = 'job';
    } else if (this.inheritsDefault(job, 'id_tokens', jobName)) {
      // `default:id_tokens` applies only when the job has none; a job's own map replaces it (#419750).
      const def = this.deref(root.get('default', true) as Node | undefined);
      if (def !== undefined && !isMap(def)) throw configError(this.where(def, 'default'), 'must be a mapping');
      const node = isMap(def) ? def.get('id_tokens', true) : undefined;
      if (node !== undefined) {
        idTokens = this.parseIdTokens(node as Node, 'default.id_tokens');
        source = 'default';
      }
    }

    const claimsNode = this.resolvedKey(chain, 'jwt_claims');
    const jwtClaims = claimsNode ? this.parseClaims(claimsNode.node, `${claimsNode.owner}.jwt_claims`) : [];
    const result: JobTokenConfig = { jobName, idTokens, idTokensSource: source, jwtClaims };
    const onDemand = this.resolvedKey(chain, 'id_tokens_on_demand');
    if (onDemand) {
      const flag = this.deref(onDemand.node);
      const value = isScalar(flag) ? flag.value : undefined;
      if (typeof value !== 'boolean') throw configError(this.where(onDemand.node, `${onDemand.owner}.id_tokens_on_demand`), 'must be true or false');
      result.onDemand = value;
    }
    return result;
  }

  private inheritsDefault(job: YAMLMap, keyword: string, jobName: string): boolean {
    const inherit = job.get('inherit', true);
    if (inherit === undefined) return true;
    if (!isMap(inherit)) throw configError(this.where(inherit as Node, `${jobName}.inherit`), 'must be a mapping');
    const def = inherit.get('default', true);
    if (def === undefined) return true;
    if (isScalar(def) && typeof def.value === 'boolean') return def.value;
    if (isSeq(def)) return def.items.some((i) => isScalar(i) && i.value === keyword);
    throw configError(this.where(def as Node, `${jobName}.inherit.default`), 'must be true, false or a list of keywords');
  }

  /**
   * The job, then its `extends` templates, nearest first (later `extends` entries win, as in GitLab). Each
   * level is a job or template with the maps its YAML merge keys (`<<: *anchor`) pull in, nearest first.
   */
  private extendsChain(root: YAMLMap, jobName: string, job: YAMLMap): Level[] {
    const out: Level[] = [];
    const visit = (name: string, map: YAMLMap, depth: number, stack: string[]): void => {
      if (depth > MAX_EXTENDS_DEPTH) throw configError(this.where(map, `${name}.extends`), `extends is nested deeper than ${String(MAX_EXTENDS_DEPTH)} levels`);
      out.push({ owner: name, maps: [map, ...this.mergeSources(map)] });
      const ext = map.get('extends', true);
      if (ext === undefined) return;
      let names: { name: string; node: Node }[];
      if (isScalar(ext) && typeof ext.value === 'string') names = [{ name: ext.value, node: ext }];
      else if (isSeq(ext) && ext.items.every((i) => isScalar(i) && typeof i.value === 'string')) {
        names = (ext.items as Node[]).map((i) => ({ name: String((i as { value: unknown }).value), node: i }));
      } else throw configError(this.where(ext as Node, `${name}.extends`), 'must be a job name or a list of job names');
      for (const parent of [...names].reverse()) {
        if (stack.includes(parent.name)) throw configError(this.where(parent.node, `${name}.extends`), `circular extends through ${JSON.stringify(parent.name)}`);
        const target = this.deref(root.get(parent.name, true) as Node | undefined);
        if (!isMap(target)) throw configError(this.where(parent.node, `${name}.extends`), `unknown job or template ${JSON.stringify(parent.name)}`);
        visit(parent.name, target, depth + 1, [...stack, parent.name]);
      }
    };
    visit(jobName, job, 0, [jobName]);
    return out;
  }

  /**
   * `key` as GitLab resolves it for a job. Within one level a YAML merge key is shallow: the nearest map
   * that has `key` gives it whole. Across `extends` levels GitLab reverse-deep-merges: mappings merge key
   * by key at every depth, the nearer level winning; lists and scalars replace. So a template's
   * `id_tokens: {A}` and the job's `id_tokens: {B}` give the job both tokens.
   */
  private resolvedKey(levels: readonly Level[], key: string): { owner: string; node: Node } | undefined {
    const found: { owner: string; node: Node }[] = [];
    for (const { owner, maps } of levels) {
      for (const map of maps) {
        const node = map.get(key, true) as Node | undefined;
        if (node !== undefined) {
          found.push({ owner, node });
          break;
        }
      }
    }
    const nearest = found[0];
    if (nearest === undefined || found.length === 1) return nearest;
    return { owner: nearest.owner, node: this.deepMerge(found.map((f) => f.node).reverse()) };
  }

  /**
   * GitLab's deep merge (Ruby `deep_merge`) of YAML nodes, farthest first: mappings merge key by key,
   * anything else replaces what came before. The result reuses the input nodes, so positions in
   * messages stay right. Depth is bounded: past it, the nearer node replaces.
   */
  private deepMerge(nodes: readonly Node[], depth = 0): Node {
    let acc = this.deref(nodes[0] as Node);
    for (let i = 1; i < nodes.length; i++) {
      const next = this.deref(nodes[i] as Node);
      acc = mergeable(acc) && mergeable(next) && depth < MAX_MERGE_DEPTH ? this.mergeMaps(acc, next, depth) : next;
    }
    return acc;
  }

  private mergeMaps(base: YAMLMap, over: YAMLMap, depth: number): YAMLMap {
    const merged = new YAMLMap();
    merged.range = over.range;
    const index = new Map<unknown, number>();
    for (const pair of base.items) {
      index.set(keyOf(pair.key), merged.items.length);
      merged.items.push(new Pair(pair.key, pair.value));
    }
    for (const pair of over.items) {
      const at = index.get(keyOf(pair.key));
      if (at === undefined) {
        index.set(keyOf(pair.key), merged.items.length);
        merged.items.push(new Pair(pair.key, pair.value));
      } else {
        const prior = merged.items[at] as Pair;
        merged.items[at] = new Pair(pair.key, this.deepMerge([prior.value as Node, pair.value as Node], depth + 1));
      }
    }
    return merged;
  }

  /** Maps pulled in with YAML merge keys (`<<: *anchor`), nearest first. */
  private mergeSources(map: YAMLMap): YAMLMap[] {
    const out: YAMLMap[] = [];
    for (const pair of map.items) {
      if (!isScalar(pair.key) || (pair.key.value !== '<<' && typeof pair.key.value !== 'symbol')) continue;
      const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
      for (const source of sources) {
        const resolved = isAlias(source) ? source.resolve(this.doc) : source;
        if (isMap(resolved)) out.push(resolved, ...this.mergeSources(resolved));
      }
    }
    return out;
  }

  private parseIdTokens(ref: Node, path: string): IdTokenSpec[] {
    const node = this.deref(ref);
    if (node.tag === '!reference') throw configError(this.where(node, path), '!reference is not supported in id_tokens');
    if (!isMap(node)) throw configError(this.where(node, path), 'must be a mapping of token names to {aud}');
    if (node.items.length > MAX_ID_TOKENS) throw configError(this.where(node, path), `at most ${String(MAX_ID_TOKENS)} ID tokens per job`);
    const specs: IdTokenSpec[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key as Node;
      const name = isScalar(keyNode) ? keyNode.value : undefined;
      if (typeof name !== 'string' || !TOKEN_NAME.test(name)) {
        throw configError(this.where(keyNode, path), `token name ${JSON.stringify(String(name).slice(0, 140))} must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$ (it becomes a variable name)`);
      }
      if (isPredefinedVariableName(name)) throw configError(this.where(keyNode, `${path}.${name}`), `token name ${name} would overwrite a predefined variable; choose another name`);
      specs.push(this.parseEntry(pair.value as Node | null, `${path}.${name}`, name, keyNode));
    }
    return specs;
  }

  private parseEntry(entry: Node | null, path: string, name: string, keyNode: Node): IdTokenSpec {
    const node = this.deref(entry);
    if (!node || !isMap(node)) throw configError(this.where(node ?? keyNode, path), 'must be a mapping with aud (and optionally lifetime, jwt_claims)');
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      if (!ENTRY_KEYS.has(key)) throw configError(this.where(pair.key as Node, `${path}.${key}`), `unknown key ${JSON.stringify(key)}: an id_tokens entry accepts only aud, lifetime and jwt_claims`);
    }
    const audNode = this.deref(node.get('aud', true) as Node | undefined);
    if (audNode === undefined || (isScalar(audNode) && audNode.value === null)) throw configError(this.where(node, `${path}.aud`), 'aud is required');
    let aud: string | string[];
    if (isScalar(audNode) && typeof audNode.value === 'string') aud = audNode.value;
    else if (isSeq(audNode)) {
      if (audNode.items.length === 0) throw configError(this.where(audNode, `${path}.aud`), 'the aud list must not be empty');
      if (audNode.items.length > MAX_AUDIENCES) throw configError(this.where(audNode, `${path}.aud`), `at most ${String(MAX_AUDIENCES)} audiences`);
      aud = audNode.items.map((raw, i) => {
        const item = this.deref(raw as Node);
        if (!isScalar(item) || typeof item.value !== 'string') throw configError(this.where(item as Node, `${path}.aud[${String(i)}]`), 'must be a string');
        return item.value;
      });
    } else throw configError(this.where(audNode, `${path}.aud`), 'must be a string or a list of strings');
    for (const a of typeof aud === 'string' ? [aud] : aud) {
      if (a.length === 0 || a.length > MAX_AUDIENCE_LENGTH * 4) throw configError(this.where(audNode, `${path}.aud`), `each audience is 1 to ${String(MAX_AUDIENCE_LENGTH)} characters`);
    }
    const spec: IdTokenSpec = { name, aud, jwtClaims: [], where: this.where(keyNode, path) };
    const lifetimeNode = node.get('lifetime', true) as Node | undefined;
    if (lifetimeNode !== undefined) {
      const v = isScalar(lifetimeNode) ? lifetimeNode.value : undefined;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < MIN_LIFETIME) {
        throw configError(this.where(lifetimeNode, `${path}.lifetime`), `must be a whole number of seconds, at least ${String(MIN_LIFETIME)}`);
      }
      spec.lifetime = v;
    }
    const claimsNode = node.get('jwt_claims', true) as Node | undefined;
    if (claimsNode !== undefined) spec.jwtClaims = this.parseClaims(claimsNode, `${path}.jwt_claims`);
    return spec;
  }

  private parseClaims(ref: Node, path: string): ClaimDefinition[] {
    const node = this.deref(ref);
    if (!isMap(node)) throw configError(this.where(node, path), 'must be a mapping of claim names to values');
    if (node.items.length > 20) throw configError(this.where(node, path), 'at most 20 custom claims');
    return node.items.map((pair) => {
      const keyNode = pair.key as Node;
      const name = isScalar(keyNode) ? keyNode.value : undefined;
      const valueNode = this.deref(pair.value as Node | null);
      // Claim values are small; refuse anything whose serialisation would explode (alias bombs).
      let value: unknown = null;
      if (valueNode) {
        try {
          value = valueNode.toJS(this.doc, { maxAliasCount: 20 });
        } catch {
          throw configError(this.where(keyNode, `${path}.${String(name)}`), 'the value uses too many YAML aliases');
        }
      }
      const def: ClaimDefinition = { name: String(name), value };
      try {
        if (typeof name !== 'string') throw configError(this.where(keyNode, path), 'claim names must be strings');
        assertValidDefinition(def, 'job configuration');
      } catch (err) {
        if (err instanceof CiOidcError) throw new CiOidcError(err.code, `${this.where(keyNode, `${path}.${String(name)}`)}: ${err.message}`);
        throw err;
      }
      return def;
    });
  }
}

const MAX_MERGE_DEPTH = 16;

const keyOf = (key: unknown): unknown => (isScalar(key) ? key.value : key);
const mergeable = (node: Node | null | undefined): node is YAMLMap => isMap(node) && node.tag !== '!reference';

/** One `extends` level: a job or template and the maps its merge keys pull in, nearest first. */
interface Level {
  owner: string;
  maps: YAMLMap[];
}
