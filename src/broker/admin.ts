import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { PolicyEngine } from '../policy/index.ts';
import { isCiOidcError } from '../server/errors.ts';
import type { Clock } from '../server/clock.ts';
import type { Database } from '../store/schema.ts';
import { auditJson, exportAudit, queryAudit, type AuditQuery } from './audit.ts';
import { getCredential, listCredentials, revokeCredentialById, revokeCredentialsForJti } from './credentials.ts';
import { bearer, secretMatches } from './http.ts';
import { ADMIN_OPENAPI } from './openapi.ts';
import type { AdminPorts, TokenVerifierPort } from './ports.ts';

export interface AdminDeps {
  db: Kysely<Database>;
  clock: Clock;
  policy: PolicyEngine;
  verifier: TokenVerifierPort;
  ports: AdminPorts;
  adminToken(): string | undefined;
  /** Audiences explain accepts by default: every role's, the PyPI audience and broker.audiences. */
  knownAudiences(): Promise<string[]>;
}

type Json = Record<string, unknown>;

class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function body(request: FastifyRequest): Json {
  const raw = typeof request.body === 'string' ? request.body : '';
  if (raw.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new AdminError(400, 'invalid_json', 'the request body is not JSON; send a JSON object with content-type application/json');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new AdminError(400, 'invalid_json', 'the request body must be a JSON object');
  return v as Json;
}

const optStr = (q: Json, k: string, max = 2048): string | undefined => {
  const v = q[k];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max) throw new AdminError(400, 'invalid_parameter', `parameter ${k} must be a string of at most ${max} characters`);
  return v;
};
const optInt = (q: Json, k: string): number | undefined => {
  const v = optStr(q, k, 20);
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,15}$/.test(v)) throw new AdminError(400, 'invalid_parameter', `parameter ${k} must be a non-negative integer`);
  return Number(v);
};

export function auditQueryFrom(q: Json): AuditQuery {
  const outcome = optStr(q, 'outcome');
  if (outcome !== undefined && !['allow', 'deny', 'error'].includes(outcome)) throw new AdminError(400, 'invalid_parameter', 'outcome must be allow, deny or error');
  const out: AuditQuery = {};
  const set = <K extends keyof AuditQuery>(k: K, v: AuditQuery[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  set('since', optInt(q, 'since'));
  set('until', optInt(q, 'until'));
  set('endpoint', optStr(q, 'endpoint', 16));
  set('outcome', outcome as AuditQuery['outcome']);
  set('reason', optStr(q, 'reason', 64));
  set('registration', optStr(q, 'registration', 200));
  set('sub', optStr(q, 'sub', 1024));
  set('jti', optStr(q, 'jti', 300));
  set('role', optStr(q, 'role', 300));
  set('credentialId', optStr(q, 'credential_id', 64));
  set('clientIp', optStr(q, 'client_ip', 64));
  set('after', optStr(q, 'after', 40));
  set('limit', optInt(q, 'limit'));
  return out;
}

/**
 * /admin/v1: issuers, roles, publishers (normal and pending), keys, credentials, audit. Bearer token
 * compared in constant time; without a configured token the API is closed.
 */
export function registerAdminRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { policy, db, clock, ports } = deps;

  app.get('/admin/v1/openapi.json', async () => ADMIN_OPENAPI);

  app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const token = deps.adminToken();
      if (token === undefined) {
        return reply.status(403).send({ error: 'admin_disabled', message: 'the admin API is disabled: set CI_OIDC_ADMIN_TOKEN (or broker.adminToken) to enable it' });
      }
      if (!secretMatches(bearer(request), [token])) {
        return reply.status(401).header('www-authenticate', 'Bearer realm="ci-oidc-admin"').send({ error: 'unauthorized', message: 'send the admin token as Authorization: Bearer <token>' });
      }
    });
    scope.setErrorHandler((error, request, reply) => {
      if (error instanceof AdminError) return reply.status(error.status).send({ error: error.code, message: error.message });
      if (isCiOidcError(error)) {
        const problems = (error as { problems?: unknown }).problems;
        return reply.status(error.status >= 500 ? 503 : error.status).send({ error: error.code, message: error.message, ...(Array.isArray(problems) ? { problems } : {}) });
      }
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== undefined && status < 500) return reply.status(status).send({ error: 'invalid_request', message: (error as Error).message });
      request.log.error({ err: error }, 'admin request failed');
      return reply.status(503).send({ error: 'unavailable', message: 'the operation failed on the server; see the server log' });
    });
    const actor = (request: FastifyRequest): string => `admin@${request.ip}`;
    const need = <T>(v: T | undefined, what: string): T => {
      if (v === undefined) throw new AdminError(404, 'not_available', `${what} is not available in this deployment`);
      return v;
    };

    // -- issuers (verifier registrations)
    scope.get('/admin/v1/issuers', async () => ({ issuers: await need(ports.issuers, 'issuer administration').list() }));
    scope.post('/admin/v1/issuers', async (request, reply) => {
      const reg = need(need(ports.issuers, 'issuer administration').register, 'issuer registration');
      return reply.status(201).send({ issuer: await reg(body(request), { actor: actor(request) }) });
    });
    scope.delete<{ Params: { id: string } }>('/admin/v1/issuers/:id', async (request, reply) => {
      const rm = need(need(ports.issuers, 'issuer administration').remove, 'issuer removal');
      if (!(await rm(request.params.id))) throw new AdminError(404, 'not_found', `no issuer registration ${request.params.id}`);
      return reply.status(204).send();
    });

    // -- roles
    scope.get('/admin/v1/roles', async (request) => {
      const q = request.query as Json;
      const registration = optStr(q, 'registration', 200);
      return { roles: await policy.listRoles(registration ? { registration } : {}) };
    });
    scope.get<{ Params: { name: string } }>('/admin/v1/roles/:name', async (request) => {
      const role = await policy.getRole(request.params.name);
      if (!role) throw new AdminError(404, 'not_found', `no role ${request.params.name}`);
      return { role };
    });
    scope.put<{ Params: { name: string } }>('/admin/v1/roles/:name', async (request) => {
      const doc = body(request);
      if (doc.name !== undefined && doc.name !== request.params.name) throw new AdminError(400, 'name_mismatch', 'the role name in the body must equal the one in the path');
      return policy.saveRole({ ...doc, name: request.params.name }, { actor: actor(request) });
    });
    scope.delete<{ Params: { name: string } }>('/admin/v1/roles/:name', async (request, reply) => {
      if (!(await policy.deleteRole(request.params.name, { actor: actor(request) }))) throw new AdminError(404, 'not_found', `no role ${request.params.name}`);
      return reply.status(204).send();
    });
    scope.post<{ Params: { name: string } }>('/admin/v1/roles/:name/reset-pins', async (request) => {
      const b = body(request);
      const reason = optStr(b, 'reason', 500);
      if (!reason) throw new AdminError(400, 'reason_required', 'give a reason for the pin reset; it is audited');
      return { role: await policy.resetRolePins(request.params.name, { actor: actor(request), reason }) };
    });
    scope.post('/admin/v1/roles/import', async (request) => {
      const b = body(request);
      const format = optStr(b, 'format', 32);
      if (!format) throw new AdminError(400, 'format_required', 'give format: aws, vault, octo-sts, gcp or k8s');
      const imp = need(ports.importRoles, 'role import');
      const { roles, lints } = await imp(format, b.source, (b.options ?? {}) as Record<string, unknown>);
      const dryRun = b.dryRun === true;
      const saved = [];
      if (!dryRun) for (const doc of roles) saved.push(await policy.saveRole(doc, { actor: actor(request) }));
      return { dryRun, roles: dryRun ? roles : saved.map((s) => s.role), lints: [...(lints ?? []), ...saved.flatMap((s) => s.lints)] };
    });
    // Operators only (policy.md §10): the full trace, never shown to exchange callers.
    scope.post('/admin/v1/explain', async (request) => {
      const b = body(request);
      const token = optStr(b, 'token', 20000);
      if (!token) throw new AdminError(400, 'token_required', 'give the ID token to explain');
      const audiences = Array.isArray(b.audiences) ? (b.audiences as unknown[]).filter((x): x is string => typeof x === 'string') : [];
      let verified;
      try {
        verified = await deps.verifier.verify(token, { audiences: audiences.length > 0 ? audiences : await deps.knownAudiences(), audienceMode: 'any-of' });
      } catch (err) {
        return { decision: 'deny', reason: (err as { code?: string }).code ?? 'verification_failed', stage: 'verify' };
      }
      const roleName = optStr(b, 'role', 64);
      if (b.publisher === true) return policy.decidePublisher({ registrationId: verified.registration.id, claims: verified.claims }, { recordPins: false });
      return policy.decideRole({ registrationId: verified.registration.id, claims: verified.claims }, { ...(roleName ? { roleName } : {}), recordPins: false });
    });

    // -- publishers
    scope.get('/admin/v1/publishers', async (request) => {
      const q = request.query as Json;
      const o: { registration?: string; project?: string } = {};
      const reg = optStr(q, 'registration', 200);
      const project = optStr(q, 'project', 200);
      if (reg) o.registration = reg;
      if (project) o.project = project;
      return { publishers: await policy.listPublishers(o) };
    });
    scope.post('/admin/v1/publishers', async (request, reply) => {
      const b = body(request);
      const projects = Array.isArray(b.projects) ? (b.projects as unknown[]).filter((x): x is string => typeof x === 'string') : undefined;
      const { projects: _p, ...input } = b;
      return reply.status(201).send({ publisher: await policy.createPublisher(input as never, { actor: actor(request), ...(projects ? { projects } : {}) }) });
    });
    scope.get<{ Params: { id: string } }>('/admin/v1/publishers/:id', async (request) => {
      const p = await policy.getPublisher(request.params.id);
      if (!p) throw new AdminError(404, 'not_found', `no publisher ${request.params.id}`);
      return { publisher: p };
    });
    scope.delete<{ Params: { id: string } }>('/admin/v1/publishers/:id', async (request, reply) => {
      if (!(await policy.deletePublisher(request.params.id, { actor: actor(request) }))) throw new AdminError(404, 'not_found', `no publisher ${request.params.id}`);
      return reply.status(204).send();
    });
    scope.put<{ Params: { id: string } }>('/admin/v1/publishers/:id/projects', async (request) => {
      const b = body(request);
      if (!Array.isArray(b.projects) || !b.projects.every((x) => typeof x === 'string')) throw new AdminError(400, 'projects_required', 'give projects as an array of names');
      return { publisher: await policy.setPublisherProjects(request.params.id, b.projects as string[], { actor: actor(request) }) };
    });
    scope.post<{ Params: { id: string } }>('/admin/v1/publishers/:id/reset-pins', async (request) => {
      const reason = optStr(body(request), 'reason', 500);
      if (!reason) throw new AdminError(400, 'reason_required', 'give a reason for the pin reset; it is audited');
      return { publisher: await policy.resetPublisherPins(request.params.id, { actor: actor(request), reason }) };
    });
    scope.get('/admin/v1/pending-publishers', async () => ({ pending: await policy.listPendingPublishers() }));
    scope.post('/admin/v1/pending-publishers', async (request, reply) => {
      const b = body(request);
      return reply.status(201).send({ pending: await policy.createPendingPublisher({ addedBy: actor(request), ...b } as never) });
    });
    scope.delete<{ Params: { id: string } }>('/admin/v1/pending-publishers/:id', async (request, reply) => {
      if (!(await policy.deletePendingPublisher(request.params.id))) throw new AdminError(404, 'not_found', `no pending publisher ${request.params.id}`);
      return reply.status(204).send();
    });

    // -- signing keys (issuer)
    scope.get('/admin/v1/keys', async () => ({ keys: await need(ports.keys, 'key administration').list() }));
    scope.post('/admin/v1/keys/rotate', async () => ({ result: await need(need(ports.keys, 'key administration').rotate, 'key rotation')() }));

    // -- credentials
    scope.get('/admin/v1/credentials', async (request) => {
      const q = request.query as Json;
      const o: Parameters<typeof listCredentials>[1] = {};
      const reg = optStr(q, 'registration', 200);
      const sub = optStr(q, 'sub', 1024);
      const role = optStr(q, 'role', 300);
      const limit = optInt(q, 'limit');
      if (reg) o.registration = reg;
      if (sub) o.sub = sub;
      if (role) o.role = role;
      if (limit !== undefined) o.limit = limit;
      if (q.active === 'true') o.activeAt = clock();
      return { credentials: await listCredentials(db, o) };
    });
    scope.post<{ Params: { id: string } }>('/admin/v1/credentials/:id/revoke', async (request) => {
      const row = await getCredential(db, request.params.id);
      if (!row) throw new AdminError(404, 'not_found', `no credential ${request.params.id}`);
      const reason = optStr(body(request), 'reason', 200) ?? `revoked by ${actor(request)}`;
      return { id: row.id, revoked: await revokeCredentialById(db, row.id, clock(), reason) };
    });
    scope.post('/admin/v1/credentials/revoke', async (request) => {
      const b = body(request);
      const registration = optStr(b, 'registration', 200);
      const jti = optStr(b, 'jti', 300);
      if (!registration || !jti) throw new AdminError(400, 'parameters_required', 'give registration and jti of the exchanged ID token');
      const reason = optStr(b, 'reason', 200) ?? `revoked by ${actor(request)}`;
      return { revoked: await revokeCredentialsForJti(db, registration, jti, clock(), reason) };
    });

    // -- audit
    scope.get('/admin/v1/audit', async (request) => {
      const records = await queryAudit(db, auditQueryFrom(request.query as Json));
      return { records: records.map(auditJson), next: records.length > 0 ? records[records.length - 1]!.id : null };
    });
    scope.get('/admin/v1/audit/export', async (request, reply: FastifyReply) => {
      const q = auditQueryFrom(request.query as Json);
      delete q.limit;
      reply.header('content-type', 'application/x-ndjson');
      const { Readable } = await import('node:stream');
      return reply.send(Readable.from(exportAudit(db, q)));
    });
  });
}
