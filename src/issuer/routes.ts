import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { issuerError } from './errors.ts';
import { DISCOVERY_HEADERS, DISCOVERY_PATH, JWKS_ALIAS_PATH, JWKS_PATH } from './discovery.ts';
import type { IssuerService } from './service.ts';

const vars = z.record(z.string().max(128), z.string().max(65536)).refine((v) => Object.keys(v).length <= 1000, 'at most 1000 variables');

const registerBody = z.strictObject({
  variables: vars,
  job_variables: vars.optional(),
  ci_config: z.string().max(1024 * 1024).optional(),
  ci_config_path: z.string().max(1024).optional(),
  job: z.record(z.string(), z.unknown()).optional(),
  /** Shorthand for `job: {id_tokens}`. */
  id_tokens: z.record(z.string(), z.unknown()).optional(),
});

const audience = z.union([z.string(), z.array(z.string()).max(10)]);
const onDemandBody = z.strictObject({ aud: audience.optional(), lifetime: z.number().int().optional() });

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    throw issuerError('request_invalid', `request body: ${issue ? `${issue.path.join('.') || '(body)'}: ${issue.message}` : 'invalid'}`);
  }
  return r.data;
}

export interface IssuerRouteDeps {
  service: IssuerService;
  discovery(): unknown;
  jwks(): unknown;
}

/** Discovery, JWKS, the Job API and on-demand minting (issuer.md §6.3, §9). */
export function registerIssuerRoutes(app: FastifyInstance, deps: IssuerRouteDeps): void {
  const { service } = deps;
  const sendPublic = (reply: FastifyReply, body: unknown) => reply.headers(DISCOVERY_HEADERS).send(JSON.stringify(body));

  app.get(DISCOVERY_PATH, async (_req, reply) => sendPublic(reply, deps.discovery()));
  app.get(JWKS_PATH, async (_req, reply) => sendPublic(reply, deps.jwks()));
  app.get(JWKS_ALIAS_PATH, async (_req, reply) => sendPublic(reply, deps.jwks()));

  app.post('/api/v1/jobs', { bodyLimit: 2 * 1024 * 1024 }, async (req, reply) => {
    const system = service.authenticateCiSystem(req.headers.authorization);
    const body = parse(registerBody, req.body);
    if (body.id_tokens !== undefined && body.job !== undefined) throw issuerError('request_invalid', 'send id_tokens inside job, or on its own, not both');
    const job = body.job ?? (body.id_tokens !== undefined ? { id_tokens: body.id_tokens } : undefined);
    const registered = await service.registerJob(
      {
        ciSystem: system.name,
        variables: body.variables,
        ...(body.job_variables ? { jobVariables: body.job_variables } : {}),
        ...(body.ci_config !== undefined ? { ciConfig: body.ci_config } : {}),
        ...(body.ci_config_path !== undefined ? { ciConfigPath: body.ci_config_path } : {}),
        ...(job !== undefined ? { job } : {}),
      },
      system,
    );
    reply.header('cache-control', 'no-store');
    return reply.status(201).send({
      job_id: registered.jobId,
      job_token: registered.jobToken,
      expires_at: registered.expiresAt,
      id_tokens_on_demand: registered.onDemand,
      id_tokens: registered.idTokens,
      variables: registered.variables,
    });
  });

  app.delete<{ Params: { jobId: string } }>('/api/v1/jobs/:jobId', async (req, reply) => {
    const { jobId } = req.params;
    if (!/^[1-9][0-9]{0,19}$/.test(jobId)) throw issuerError('job_not_found', 'job IDs are decimal numbers', 404);
    if (req.headers.authorization && !/^bearer cioidc_job_/i.test(req.headers.authorization)) {
      service.authenticateCiSystem(req.headers.authorization);
    } else {
      const job = await service.authenticateJob(req.headers.authorization, headerValue(req, 'job-token'));
      if (job.jobId !== jobId) throw issuerError('job_token_invalid', 'this job token belongs to another job', 401);
    }
    const revoked = await service.revokeJob(jobId);
    if (!revoked) throw issuerError('job_not_found', `job ${jobId} is not registered or already ended`, 404);
    return reply.status(204).send();
  });

  const onDemand = async (req: FastifyRequest, reply: FastifyReply) => {
    const job = await service.authenticateJob(req.headers.authorization, headerValue(req, 'job-token'));
    const body = parse(onDemandBody, req.body);
    const minted = await service.mintOnDemand(job, { aud: body.aud, lifetime: body.lifetime, mode: 'api' });
    reply.header('cache-control', 'no-store');
    return reply.status(201).send({ token: minted.token, expires_at: minted.expiresAt });
  };
  app.post('/api/v1/job/id_tokens', onDemand);
  app.post('/api/v4/job/id_token', onDemand);

  // GitHub-compatible request URL: @actions/core getIDToken() appends `&audience=` and sends a bearer token.
  const github = async (req: FastifyRequest<{ Params: { jobId: string }; Querystring: Record<string, string | string[] | undefined> }>, reply: FastifyReply) => {
    const job = await service.authenticateJob(req.headers.authorization);
    if (job.jobId !== req.params.jobId) throw issuerError('job_token_invalid', 'this request token belongs to another job', 401);
    const q = req.query;
    const single = (name: string): string | undefined => {
      const v = q[name];
      if (Array.isArray(v)) throw issuerError('request_invalid', `query parameter ${name} given more than once`);
      return v;
    };
    const aud = single('audience');
    const lifetimeText = single('lifetime');
    if (lifetimeText !== undefined && !/^[0-9]{1,7}$/.test(lifetimeText)) throw issuerError('lifetime_invalid', 'lifetime must be a whole number of seconds');
    const minted = await service.mintOnDemand(job, {
      aud: aud === undefined || aud === '' ? undefined : aud,
      lifetime: lifetimeText === undefined ? undefined : Number(lifetimeText),
      mode: 'github',
    });
    reply.header('cache-control', 'no-store');
    return reply.status(200).send({ value: minted.token });
  };
  app.get('/api/v1/jobs/:jobId/id_token', github);
  app.post('/api/v1/jobs/:jobId/id_token', github);
}

function headerValue(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}
