/**
 * The policy engine the broker calls: an in-memory index over the store's roles and publishers
 * (indexed by registration and tenant claim / project path, never a scan), decisions, CRUD with
 * validation, and pin recording. Replicas poll `policy_generation` to invalidate (docs/policy.md).
 */
import { randomUUID } from 'node:crypto';
import { CiOidcError } from '../server/errors.ts';
import { systemClock, type Clock } from '../server/clock.ts';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { PolicyPendingPublisherRow, PolicyPublisherRow, PolicyRoleRow } from '../store/tables/policy.ts';
import { asciiLower } from './glob.ts';
import { claimMetadata, pinsView, selectRole, tokenSummary, type LoadedRole } from './decide.ts';
import { PolicyValidationError } from './predicate.ts';
import { compileRole } from './role.ts';
import { PolicyRepository } from './repository.ts';
import {
  indexKey,
  MAX_PENDING_PER_USER,
  normalizePublisherInput,
  PENDING_EXPIRY_SECONDS,
  pickPublisher,
  publisherLookupKey,
  publisherProviderFor,
  runPublisherChecks,
  ultranormalizeName,
  validatePackageName,
} from './publishers.ts';
import type {
  DecidePublisherOptions,
  DecideRoleOptions,
  Lint,
  PendingPublisherInput,
  PolicyEngine,
  PolicyRegistration,
  PublisherDecision,
  PublisherInput,
  PublisherProvider,
  RoleDecision,
  StoredPendingPublisher,
  StoredPublisher,
  StoredRole,
  VerifiedToken,
} from './types.ts';

export interface PolicyEngineOptions {
  store: { db: Kysely<Database> };
  /** Issuer registrations by id (the verifier's registry). */
  registrations: readonly PolicyRegistration[] | ((id: string) => PolicyRegistration | undefined);
  clock?: Clock;
  /** How long a replica may serve from its index before re-reading the generation counter (default 5 s). */
  maxStaleSeconds?: number;
  /** Receives every decision with its explain trace (operators only; never the raw token). */
  onDecision?: (kind: 'role' | 'publisher', decision: RoleDecision | PublisherDecision) => void;
  /** A stored role that no longer compiles (its registration is gone or changed): it is skipped, never half-applied. */
  onLoadError?: (role: { id: string; tenant: string; name: string }, message: string) => void;
}

const DEFAULT_TENANT = 'default';

function addBucket(out: LoadedRole[], roles: LoadedRole[] | undefined, tenant: string): void {
  if (!roles) return;
  for (let i = 0; i < roles.length; i++) {
    const r = roles[i]!;
    if (r.tenant === tenant && !out.includes(r)) out.push(r);
  }
}

interface RegistrationIndex {
  /** claim → value → roles; every role sits in exactly one bucket or in `unindexed`. */
  byClaim: Map<string, Map<string, LoadedRole[]>>;
  /** The same buckets as an array, with whether the claim's values are case-folded (path claims). */
  buckets: { claim: string; fold: boolean; byValue: Map<string, LoadedRole[]> }[];
  unindexed: LoadedRole[];
}

const storedCache = new WeakMap<LoadedRole, StoredRole>();

/** The role as the broker sees it; cached until its pins change. */
function toStoredRole(r: LoadedRole): StoredRole {
  const pins = pinsView(r);
  const hit = storedCache.get(r);
  if (hit && hit.pins === pins) return hit;
  const stored: StoredRole = { id: r.id, tenant: r.tenant, document: r.compiled.document, pins, createdAt: r.createdAt, updatedAt: r.updatedAt };
  storedCache.set(r, stored);
  return stored;
}

function publisherDeny(explain: PublisherDecision['explain'], code: PublisherDecision['code'], description: string, reason: PublisherDecision['reason'], operatorMessage?: string): PublisherDecision {
  if (operatorMessage) explain.operatorMessage = operatorMessage;
  return { decision: 'deny', code, description, reason, explain };
}

function publisherFromRow(row: PolicyPublisherRow): StoredPublisher {
  return {
    id: row.id,
    tenant: row.tenant,
    provider: row.provider as PublisherProvider,
    registration: row.registration,
    owner: row.owner,
    project: row.project,
    workflow: row.workflow,
    environment: row.environment,
    constraints: JSON.parse(row.constraints),
    pins: { ownerId: row.pin_owner_id, projectId: row.pin_project_id },
    projects: JSON.parse(row.projects),
    firstUseDeadline: row.first_use_deadline === null ? null : Number(row.first_use_deadline),
    createdAt: Number(row.created_at),
  };
}

function pendingFromRow(row: PolicyPendingPublisherRow): StoredPendingPublisher {
  return { ...publisherFromRow(row), projectName: row.project_name, addedBy: row.added_by, expiresAt: Number(row.expires_at) };
}

function invalid(err: unknown): CiOidcError {
  if (err instanceof CiOidcError) return err;
  if (err instanceof PolicyValidationError) return new CiOidcError(err.code, err.message, { status: 400 });
  return new CiOidcError('publisher_invalid', (err as Error).message, { status: 400 });
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed|duplicate key/i.test(e?.message ?? '');
}

export async function createPolicyEngine(options: PolicyEngineOptions): Promise<PolicyEngine & { repository: PolicyRepository }> {
  const repo = new PolicyRepository(options.store.db);
  const clock = options.clock ?? systemClock;
  const maxStale = options.maxStaleSeconds ?? 5;
  const lookupRegistration =
    typeof options.registrations === 'function'
      ? options.registrations
      : ((list: readonly PolicyRegistration[]) => {
          const m = new Map(list.map((r) => [r.id, r]));
          return (id: string) => m.get(id);
        })(options.registrations);

  const visible = (registration: PolicyRegistration | undefined, tenant: string): PolicyRegistration | undefined =>
    registration && (registration.tenant === undefined || registration.tenant === tenant) ? registration : undefined;

  // --- in-memory state ---
  let rolesByName = new Map<string, LoadedRole>();
  let roleIndex = new Map<string, RegistrationIndex>();
  let publishers = new Map<string, StoredPublisher[]>();
  let pending = new Map<string, StoredPendingPublisher[]>();
  let publishersById = new Map<string, StoredPublisher>();
  let generation = -1;
  let checkedAt = -Infinity;
  let storeError: unknown = null;

  const roleKey = (tenant: string, name: string) => `${tenant}\u0000${name}`;

  function loadRole(row: PolicyRoleRow): LoadedRole | null {
    const registration = lookupRegistration(row.registration);
    const report = (message: string) => options.onLoadError?.({ id: row.id, tenant: row.tenant, name: row.name }, message);
    if (!registration) {
      report(`issuer registration ${row.registration} is not configured: the role is inactive`);
      return null;
    }
    try {
      const compiled = compileRole(JSON.parse(row.document), registration);
      return { id: row.id, tenant: row.tenant, compiled, pins: { owner: row.pin_owner_id, project: row.pin_project_id }, createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) };
    } catch (err) {
      report(`role no longer compiles and is inactive: ${(err as Error).message}`);
      return null;
    }
  }

  function indexRole(idx: Map<string, RegistrationIndex>, role: LoadedRole): void {
    const reg = role.compiled.document.issuer;
    let ri = idx.get(reg);
    if (!ri) idx.set(reg, (ri = { byClaim: new Map(), buckets: [], unindexed: [] }));
    // Prefer the most selective claim (order of the profile's tenantExact: project before namespace).
    const order = Object.entries(role.compiled.profile.tenantExact).sort((a, b) => b[1] - a[1]).map(([c]) => c);
    const claim = order.find((c) => role.compiled.indexKeys.has(c));
    if (!claim) {
      ri.unindexed.push(role);
      return;
    }
    let byValue = ri.byClaim.get(claim);
    if (!byValue) {
      ri.byClaim.set(claim, (byValue = new Map()));
      ri.buckets.push({ claim, fold: role.compiled.profile.kindOf(claim) === 'path', byValue });
    }
    for (const v of role.compiled.indexKeys.get(claim) ?? []) {
      const list = byValue.get(v);
      if (list) list.push(role);
      else byValue.set(v, [role]);
    }
  }

  async function reload(): Promise<void> {
    const gen = await repo.generation();
    const [roleRows, pubRows, pendingRows] = await Promise.all([repo.allRoles(), repo.allPublishers(), repo.allPending()]);
    const names = new Map<string, LoadedRole>();
    const idx = new Map<string, RegistrationIndex>();
    for (const row of roleRows) {
      const role = loadRole(row);
      if (!role) continue;
      names.set(roleKey(row.tenant, row.name), role);
      indexRole(idx, role);
    }
    const pubs = new Map<string, StoredPublisher[]>();
    const byId = new Map<string, StoredPublisher>();
    for (const row of pubRows) {
      const p = publisherFromRow(row);
      byId.set(p.id, p);
      const k = indexKey(p.registration, p.owner, p.project);
      const l = pubs.get(k);
      if (l) l.push(p);
      else pubs.set(k, [p]);
    }
    const pend = new Map<string, StoredPendingPublisher[]>();
    for (const row of pendingRows) {
      const p = pendingFromRow(row);
      const k = indexKey(p.registration, p.owner, p.project);
      const l = pend.get(k);
      if (l) l.push(p);
      else pend.set(k, [p]);
    }
    rolesByName = names;
    roleIndex = idx;
    publishers = pubs;
    publishersById = byId;
    pending = pend;
    generation = gen;
    checkedAt = clock();
  }

  /** Re-reads the generation counter when the index is older than maxStale; reloads on change. */
  /** Synchronous fast path: the index is young enough and the store answered last time. */
  function fresh(): boolean {
    return storeError === null && clock() - checkedAt < maxStale;
  }

  async function ensureFresh(): Promise<boolean> {
    const now = clock();
    if (now - checkedAt < maxStale && storeError === null) return true;
    try {
      const gen = await repo.generation();
      if (gen !== generation) await reload();
      checkedAt = now;
      storeError = null;
      return true;
    } catch (err) {
      storeError = err;
      return false;
    }
  }

  await reload();

  function candidatesFor(registration: PolicyRegistration, tenant: string, claims: Readonly<Record<string, unknown>>): LoadedRole[] {
    const ri = roleIndex.get(registration.id);
    if (!ri) return [];
    const out: LoadedRole[] = [];
    for (let b = 0; b < ri.buckets.length; b++) {
      const bucket = ri.buckets[b]!;
      const v = claims[bucket.claim];
      if (typeof v === 'string') addBucket(out, bucket.byValue.get(bucket.fold ? asciiLower(v) : v), tenant);
      else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') addBucket(out, bucket.byValue.get(bucket.fold ? asciiLower(x) : x), tenant);
    }
    for (let i = 0; i < ri.unindexed.length; i++) if (ri.unindexed[i]!.tenant === tenant) out.push(ri.unindexed[i]!);
    return out;
  }

  function denyRole(reason: RoleDecision['reason'], token: VerifiedToken, iss = ''): RoleDecision {
    return { decision: 'deny', reason, issuer: { registration: token.registrationId, iss }, tokenSummary: tokenSummary(token.claims), candidates: [] };
  }

  async function recordRolePins(role: LoadedRole, toRecord: { owner?: string; project?: string }): Promise<boolean> {
    for (const slot of ['owner', 'project'] as const) {
      const v = toRecord[slot];
      if (v === undefined) continue;
      const inForce = await repo.casPin('policy_roles', role.id, slot === 'owner' ? 'pin_owner_id' : 'pin_project_id', v);
      role.pins[slot] = inForce;
      if (inForce !== v) return false;
    }
    return true;
  }

  const engine: PolicyEngine & { repository: PolicyRepository } = {
    repository: repo,

    async decideRole(token, opts: DecideRoleOptions = {}) {
      const tenant = opts.tenant ?? DEFAULT_TENANT;
      const registration = visible(lookupRegistration(token.registrationId), tenant);
      if (!registration) return emit('role', denyRole('issuer-not-trusted', token));
      if (!fresh() && !(await ensureFresh())) return emit('role', denyRole('policy-store-unavailable', token, registration.issuer));
      const mode = opts.audienceMode ?? 'single';
      let candidates: LoadedRole[];
      if (opts.roleName !== undefined) {
        const r = rolesByName.get(roleKey(tenant, opts.roleName));
        if (!r) return emit('role', { ...denyRole('role-not-found', token, registration.issuer) });
        candidates = [r];
      } else {
        candidates = candidatesFor(registration, tenant, token.claims);
        if (opts.grantType !== undefined) candidates = candidates.filter((r) => (r.compiled.document.grant?.type ?? 'oauth') === opts.grantType);
      }
      const { decision, winner } = selectRole({ registration, claims: token.claims, candidates, named: opts.roleName !== undefined, mode });
      if (!winner) return emit('role', decision);
      if (opts.recordPins !== false && (winner.toRecord.owner || winner.toRecord.project)) {
        let ok: boolean;
        try {
          ok = await recordRolePins(winner.role, winner.toRecord);
        } catch {
          return emit('role', { ...decision, decision: 'deny', reason: 'policy-store-unavailable', selected: undefined });
        }
        if (!ok) {
          const denied: RoleDecision = { ...decision, decision: 'deny', reason: opts.roleName !== undefined ? 'role-denied' : 'no-role-matched', cause: 'id-mismatch', selected: undefined };
          return emit('role', denied);
        }
      }
      const metadata = claimMetadata(winner.role, token.claims);
      if ('error' in metadata) return emit('role', { ...decision, decision: 'deny', reason: opts.roleName !== undefined ? 'role-denied' : 'no-role-matched', cause: 'claim-type', selected: undefined });
      decision.role = toStoredRole(winner.role);
      decision.metadata = metadata;
      return emit('role', decision);
    },

    async decidePublisher(token, opts: DecidePublisherOptions = {}) {
      const tenant = opts.tenant ?? DEFAULT_TENANT;
      const registration = visible(lookupRegistration(token.registrationId), tenant);
      const explain: PublisherDecision['explain'] = { registration: token.registrationId, considered: [], checks: [] };
      const provider = registration ? publisherProviderFor(registration) : null;
      if (!registration || !provider) return emit('publisher', publisherDeny(explain, 'invalid-payload', 'unknown trusted publishing issuer', 'issuer-not-trusted'));
      if (!fresh() && !(await ensureFresh())) return emit('publisher', publisherDeny(explain, 'invalid-publisher', 'valid token, but no corresponding publisher (policy store unavailable)', 'policy-store-unavailable'));
      const claims = token.claims;
      const key = publisherLookupKey(provider, claims);
      if ('error' in key) return emit('publisher', publisherDeny(explain, 'invalid-publisher', `valid token, but no corresponding publisher (${key.error})`, key.error.startsWith('Missing') ? 'claim-missing' : 'predicate-false'));
      const k = indexKey(registration.id, key.owner, key.project);
      explain.lookupKey = `${registration.id} ${asciiLower(key.owner)}/${asciiLower(key.project)} ${key.workflow}`;
      const now = clock();

      if (!opts.skipPending) {
        const rows = (pending.get(k) ?? []).filter((p) => p.tenant === tenant && p.expiresAt > now);
        const p = pickPublisher(provider, rows, key, claims);
        if (p) {
          explain.considered.push({ id: p.id, kind: 'pending', environment: p.environment });
          const outcome = runPublisherChecks(p, registration, claims, now);
          explain.checks.push(...outcome.trace);
          // A pending publisher that fails its checks falls through to the normal lookup (Warehouse).
          if (outcome.ok) return emit('publisher', { decision: 'allow', reason: 'allowed', kind: 'pending', pending: p, explain });
        }
      }

      const rows = (publishers.get(k) ?? []).filter((p) => p.tenant === tenant);
      const pub = pickPublisher(provider, rows, key, claims);
      if (!pub) return emit('publisher', publisherDeny(explain, 'invalid-publisher', 'valid token, but no corresponding publisher (Publisher with matching claims was not found)', 'no-role-matched'));
      explain.considered.push({ id: pub.id, kind: 'normal', environment: pub.environment });
      const outcome = runPublisherChecks(pub, registration, claims, now);
      explain.checks.push(...outcome.trace);
      if (!outcome.ok) return emit('publisher', publisherDeny(explain, 'invalid-publisher', `valid token, but no corresponding publisher (${outcome.message})`, outcome.reason ?? 'predicate-false', outcome.detail));
      let current = pub;
      if (opts.recordPins !== false && (outcome.toRecord.owner || outcome.toRecord.project)) {
        try {
          let pins = { ...pub.pins };
          for (const slot of ['owner', 'project'] as const) {
            const v = outcome.toRecord[slot];
            if (v === undefined) continue;
            const inForce = await repo.casPin('policy_publishers', pub.id, slot === 'owner' ? 'pin_owner_id' : 'pin_project_id', v);
            pins = slot === 'owner' ? { ...pins, ownerId: inForce } : { ...pins, projectId: inForce };
            if (inForce !== v) {
              replacePublisher({ ...pub, pins });
              const claim = pub.provider === 'gitlab' ? (slot === 'owner' ? 'namespace_id' : 'project_id') : slot === 'owner' ? 'repository_owner_id' : 'repository_id';
              return emit('publisher', publisherDeny(explain, 'invalid-publisher', `valid token, but no corresponding publisher (Check failed for required claim '${claim}')`, 'id-mismatch', 'a concurrent first use recorded different IDs'));
            }
          }
          current = { ...pub, pins };
          replacePublisher(current);
        } catch {
          return emit('publisher', publisherDeny(explain, 'invalid-publisher', 'valid token, but no corresponding publisher (policy store unavailable)', 'policy-store-unavailable'));
        }
      }
      return emit('publisher', { decision: 'allow', reason: 'allowed', kind: 'normal', publisher: current, explain });
    },

    async saveRole(document, o = {}) {
      const tenant = o.tenant ?? DEFAULT_TENANT;
      const issuer = (document as { issuer?: unknown } | null)?.issuer;
      const registration = typeof issuer === 'string' ? visible(lookupRegistration(issuer), tenant) : undefined;
      let compiled;
      try {
        compiled = compileRole(document, registration);
      } catch (err) {
        throw invalid(err);
      }
      const doc = compiled.document;
      const p = compiled.profile.pins;
      const explicit = (doc.pins ?? {}) as Record<string, string | undefined>;
      const row = await repo.upsertRole({
        tenant,
        name: doc.name,
        registration: doc.issuer,
        document: JSON.stringify(doc),
        pin_owner_id: p ? (explicit[p.owner] ?? null) : null,
        pin_project_id: p ? (explicit[p.project] ?? null) : null,
        updated_at: clock(),
        now: clock(),
        actor: o.actor ?? 'admin',
      });
      invalidate();
      const loaded: LoadedRole = { id: row.id, tenant, compiled, pins: { owner: row.pin_owner_id, project: row.pin_project_id }, createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) };
      return { role: toStoredRole(loaded), lints: compiled.lints as Lint[] };
    },

    async getRole(name, o = {}) {
      await ensureFresh();
      const r = rolesByName.get(roleKey(o.tenant ?? DEFAULT_TENANT, name));
      return r ? toStoredRole(r) : undefined;
    },

    async listRoles(o = {}) {
      await ensureFresh();
      const tenant = o.tenant ?? DEFAULT_TENANT;
      return [...rolesByName.values()].filter((r) => r.tenant === tenant && (o.registration === undefined || r.compiled.document.issuer === o.registration)).map(toStoredRole);
    },

    async deleteRole(name, o = {}) {
      const ok = await repo.deleteRole(o.tenant ?? DEFAULT_TENANT, name, o.actor ?? 'admin', clock());
      await reload();
      return ok;
    },

    async resetRolePins(name, request) {
      const tenant = request.tenant ?? DEFAULT_TENANT;
      const row = await repo.getRole(tenant, name);
      if (!row) throw new CiOidcError('role_not_found', `role ${JSON.stringify(name)} does not exist: check the name and tenant`, { status: 404 });
      if (!request.actor || !request.reason) throw new CiOidcError('audit_required', 'a pin reset needs an actor and a reason for the audit log', { status: 400 });
      await repo.resetPins('policy_roles', row.id, request.actor, request.reason, clock());
      await reload();
      const r = rolesByName.get(roleKey(tenant, name));
      if (!r) throw new CiOidcError('role_not_found', `role ${JSON.stringify(name)} could not be reloaded`, { status: 404 });
      return toStoredRole(r);
    },

    async createPublisher(input: PublisherInput, o = {}) {
      const tenant = input.tenant ?? DEFAULT_TENANT;
      const registration = visible(lookupRegistration(input.registration), tenant);
      if (!registration) throw new CiOidcError('issuer_unknown', `unknown issuer registration ${JSON.stringify(input.registration)}: register the issuer first`, { status: 400 });
      let n;
      try {
        n = normalizePublisherInput(input, registration);
      } catch (err) {
        throw invalid(err);
      }
      const now = clock();
      const deadlineDays = input.firstUseDeadlineDays;
      if (deadlineDays !== undefined && (!Number.isInteger(deadlineDays) || deadlineDays < 1 || deadlineDays > 365)) throw new CiOidcError('publisher_invalid', 'firstUseDeadlineDays must be an integer from 1 to 365', { status: 400 });
      const row: PolicyPublisherRow = {
        ...publisherRow(tenant, input.provider, registration.id, n, now),
        projects: JSON.stringify(o.projects ?? []),
        first_use_deadline: deadlineDays === undefined ? null : now + deadlineDays * 86_400,
      };
      try {
        await repo.insertPublisher(row, o.actor ?? 'admin');
      } catch (err) {
        if (isUniqueViolation(err)) throw new CiOidcError('publisher_exists', 'a publisher with this issuer, namespace, project, workflow and environment already exists: attach your project to it instead', { status: 409 });
        throw err;
      }
      invalidate();
      return publisherFromRow(row);
    },

    async getPublisher(id) {
      await ensureFresh();
      return publishersById.get(id);
    },

    async listPublishers(o = {}) {
      await ensureFresh();
      const tenant = o.tenant ?? DEFAULT_TENANT;
      return [...publishersById.values()].filter((p) => p.tenant === tenant && (o.registration === undefined || p.registration === o.registration) && (o.project === undefined || p.projects.includes(o.project)));
    },

    async deletePublisher(id, o = {}) {
      const ok = await repo.deletePublisher(id, o.actor ?? 'admin', clock());
      await reload();
      return ok;
    },

    async setPublisherProjects(id, projects, o = {}) {
      for (const p of projects) {
        const e = validatePackageName(p);
        if (e) throw new CiOidcError('publisher_invalid', e, { status: 400 });
      }
      if (!(await repo.setProjects(id, [...new Set(projects)], o.actor ?? 'admin', clock()))) throw new CiOidcError('publisher_not_found', 'no such publisher', { status: 404 });
      await reload();
      return publishersById.get(id)!;
    },

    async resetPublisherPins(id, request) {
      if (!request.actor || !request.reason) throw new CiOidcError('audit_required', 'a pin reset needs an actor and a reason for the audit log', { status: 400 });
      const pub = publishersById.get(id) ?? (await repo.getPublisher(id).then((r) => (r ? publisherFromRow(r) : undefined)));
      if (!pub) throw new CiOidcError('publisher_not_found', 'no such publisher', { status: 404 });
      if (pub.provider === 'github') {
        // GitHub's owner id is configuration (PyPI), not a first-use pin: only the repository pin resets.
        const before = pub.pins.ownerId;
        await repo.resetPins('policy_publishers', id, request.actor, request.reason, clock());
        if (before) await repo.casPin('policy_publishers', id, 'pin_owner_id', before);
      } else {
        await repo.resetPins('policy_publishers', id, request.actor, request.reason, clock());
      }
      await reload();
      return publishersById.get(id)!;
    },

    async createPendingPublisher(input: PendingPublisherInput, o = {}) {
      const tenant = input.tenant ?? DEFAULT_TENANT;
      const registration = visible(lookupRegistration(input.registration), tenant);
      if (!registration) throw new CiOidcError('issuer_unknown', `unknown issuer registration ${JSON.stringify(input.registration)}`, { status: 400 });
      const nameErr = validatePackageName(input.projectName);
      if (nameErr) throw new CiOidcError('publisher_invalid', nameErr, { status: 400 });
      if (typeof input.addedBy !== 'string' || input.addedBy.length === 0) throw new CiOidcError('publisher_invalid', 'addedBy (the registering user) is required', { status: 400 });
      let n;
      try {
        n = normalizePublisherInput(input, registration);
      } catch (err) {
        throw invalid(err);
      }
      const max = o.maxPerUser ?? MAX_PENDING_PER_USER;
      if ((await repo.countPendingBy(input.addedBy)) >= max) throw new CiOidcError('pending_limit', `a user may have at most ${max} pending publishers: remove one first`, { status: 400 });
      const now = clock();
      const row: PolicyPendingPublisherRow = {
        ...publisherRow(tenant, input.provider, registration.id, n, now),
        projects: '[]',
        first_use_deadline: null,
        project_name: input.projectName,
        project_name_norm: ultranormalizeName(input.projectName),
        added_by: input.addedBy,
        expires_at: now + PENDING_EXPIRY_SECONDS,
      };
      try {
        await repo.insertPending(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw new CiOidcError('pending_publisher_exists', 'this CI identity is already pending for another project name: one identity can be pending for one name only', { status: 409 });
        throw err;
      }
      invalidate();
      return pendingFromRow(row);
    },

    async listPendingPublishers(o = {}) {
      await ensureFresh();
      const tenant = o.tenant ?? DEFAULT_TENANT;
      return [...pending.values()].flat().filter((p) => p.tenant === tenant && (o.addedBy === undefined || p.addedBy === o.addedBy));
    },

    async deletePendingPublisher(id) {
      const ok = await repo.deletePending(id);
      await reload();
      return ok;
    },

    async reifyPendingPublisher(pendingId, claims) {
      const p = await repo.getPending(pendingId);
      if (!p) throw new CiOidcError('pending_publisher_not_found', 'no such pending publisher', { status: 404 });
      const [ownerClaim, projectClaim] = p.provider === 'gitlab' ? ['namespace_id', 'project_id'] : ['repository_owner_id', 'repository_id'];
      const id = (v: unknown) => (typeof v === 'string' && /^[1-9][0-9]{0,19}$/.test(v) ? v : null);
      const res = await repo.reify(pendingId, { owner: id(claims[ownerClaim]), project: id(claims[projectClaim]) }, clock());
      if (!res) throw new CiOidcError('pending_publisher_not_found', 'no such pending publisher', { status: 404 });
      await reload();
      return { publisher: publisherFromRow(res.publisher), removedPending: res.removed.map(pendingFromRow) };
    },

    async expirePendingPublishers() {
      const rows = await repo.expirePending(clock());
      if (rows.length) await reload();
      return rows.map(pendingFromRow);
    },

    async refresh() {
      await reload();
    },

    async close() {
      rolesByName.clear();
      roleIndex.clear();
      publishers.clear();
      pending.clear();
    },
  };

  /** After our own write: the next read re-checks the generation and reloads once. */
  function invalidate(): void {
    checkedAt = -Infinity;
  }

  function replacePublisher(p: StoredPublisher): void {
    publishersById.set(p.id, p);
    const k = indexKey(p.registration, p.owner, p.project);
    const list = publishers.get(k);
    if (list) publishers.set(k, list.map((x) => (x.id === p.id ? p : x)));
  }

  function emit<T extends RoleDecision | PublisherDecision>(kind: 'role' | 'publisher', d: T): T {
    options.onDecision?.(kind, d);
    return d;
  }

  return engine;
}

/** The columns a publisher row and a pending-publisher row share, from normalized input. */
function publisherRow(
  tenant: string,
  provider: PolicyPublisherRow['provider'],
  registration: string,
  n: ReturnType<typeof normalizePublisherInput>,
  now: number,
): Omit<PolicyPublisherRow, 'projects' | 'first_use_deadline'> {
  return {
    id: randomUUID(),
    tenant,
    provider,
    registration,
    owner: n.owner,
    owner_lc: asciiLower(n.owner),
    project: n.project,
    project_lc: asciiLower(n.project),
    workflow: n.workflow,
    environment: n.environment,
    constraints: JSON.stringify(n.constraints),
    pin_owner_id: n.ownerId,
    pin_project_id: n.projectId,
    created_at: now,
  };
}
