import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ExchangeError, isExchangeError } from './errors.ts';
import { NO_STORE, bearer, bodyText, contentType, requestMeta, secretMatches } from './http.ts';
import type { BrokerService } from './service.ts';
import { OAuthError, formFromJson, oauthErrorFor, parseForm, parseTokenExchange, type Form } from './wire/oauth.ts';
import { PypiError, parseMintTokenBody, pypiErrorBody, pypiErrorFor } from './wire/pypi.ts';
import { StsError, parseStsForm, stsErrorFor, stsErrorXml, stsSuccessXml } from './wire/sts.ts';
import { MOUNT_PATTERN, VaultError, parseVaultLogin, vaultErrorFor, vaultLoginResponse } from './wire/vault.ts';

export interface RouteOptions {
  /** Secrets accepted at /oauth/introspect (the admin token and configured introspection tokens). */
  introspectionSecrets(): string[];
}

function unexpected(err: unknown): ExchangeError {
  if (isExchangeError(err)) return err;
  return new ExchangeError('internal', 'internal_error', 'the broker could not complete the request', { cause: err });
}

/** Exchange endpoints: PyPI, RFC 8693 (+ RFC 7662/7009), Vault login and AWS STS. Needs rawBodies() on the scope. */
export function registerExchangeRoutes(app: FastifyInstance, broker: BrokerService, opts: RouteOptions): void {
  const cfg = broker.config;

  // ---- PyPI (trusted-publishing.md §1, §10) ----
  app.get('/_/oidc/audience', async (_req, reply) => {
    if (!cfg.pypi.enabled) return reply.status(403).send({ message: 'Trusted publishing functionality not enabled' });
    return reply.send({ audience: broker.pypiAudience() });
  });
  const mint = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(NO_STORE);
    try {
      if (!cfg.pypi.enabled) throw new PypiError('not-enabled', 'Trusted publishing functionality not enabled');
      const token = parseMintTokenBody(bodyText(request));
      const out = await broker.mintPypi(token, requestMeta(request));
      return reply.status(200).send({ success: true, token: out.token, expires: out.expires });
    } catch (err) {
      const e = err instanceof PypiError ? err : toPypi(unexpected(err));
      if (e.status === 429) reply.header('retry-after', '60');
      return reply.status(e.status).send(pypiErrorBody(e.code, e.description));
    }
  };
  app.post('/_/oidc/mint-token', mint);
  app.post('/_/oidc/github/mint-token', mint);
  app.delete('/_/oidc/token', async (request, reply) => {
    const token = bearer(request);
    if (token === undefined) return reply.status(401).header('www-authenticate', 'Bearer').send({ message: 'send the minted token as Authorization: Bearer <token>' });
    await broker.revoke(token, 'revoked by holder (DELETE /_/oidc/token)');
    return reply.status(204).send();
  });

  // ---- RFC 8693 token exchange (policy.md §12.1) ----
  const tokenEndpoint = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(NO_STORE);
    try {
      if (!cfg.oauth.enabled) throw new OAuthError('unsupported_grant_type', 'token_exchange_disabled');
      const form = readForm(contentType(request), bodyText(request));
      const req = parseTokenExchange(form);
      return reply.status(200).send(await broker.tokenExchange(req, requestMeta(request)));
    } catch (err) {
      const e = err instanceof OAuthError ? err : (() => {
        const x = unexpected(err);
        return oauthErrorFor(x.kind, x.code);
      })();
      if (e.status === 429) reply.header('retry-after', '60');
      return reply.status(e.status).send({ error: e.error, error_description: e.description });
    }
  };
  app.post('/oauth/token', tokenEndpoint);
  app.post('/token', tokenEndpoint);

  // RFC 7662: resource servers authenticate with a configured bearer secret.
  app.post('/oauth/introspect', async (request, reply) => {
    reply.headers(NO_STORE);
    if (!secretMatches(bearer(request), opts.introspectionSecrets())) {
      return reply.status(401).header('www-authenticate', 'Bearer realm="ci-oidc"').send({ error: 'invalid_client', error_description: 'introspection_requires_bearer_secret' });
    }
    let form: Form;
    try {
      form = readForm(contentType(request), bodyText(request));
    } catch (err) {
      const e = err instanceof OAuthError ? err : new OAuthError('invalid_request', 'malformed_body');
      return reply.status(400).send({ error: e.error, error_description: e.description });
    }
    const token = form.token;
    if (!token || token.length !== 1) return reply.status(400).send({ error: 'invalid_request', error_description: 'missing_parameter:token' });
    return reply.send(await broker.introspect(token[0]!));
  });

  // RFC 7009: holding the token is the authority to revoke it; unknown tokens also get 200.
  app.post('/oauth/revoke', async (request, reply) => {
    reply.headers(NO_STORE);
    let form: Form;
    try {
      form = readForm(contentType(request), bodyText(request));
    } catch {
      return reply.status(400).send({ error: 'invalid_request', error_description: 'malformed_body' });
    }
    const token = form.token;
    if (!token || token.length !== 1) return reply.status(400).send({ error: 'invalid_request', error_description: 'missing_parameter:token' });
    await broker.revoke(token[0]!, 'revoked by holder (RFC 7009)');
    return reply.status(200).send();
  });

  // ---- Vault JWT auth (policy.md §12.2) ----
  app.post<{ Params: { mount: string } }>('/v1/auth/:mount/login', async (request, reply) => {
    const mount = request.params.mount;
    let roleName: string | undefined;
    try {
      if (!cfg.vault.enabled || !MOUNT_PATTERN.test(mount) || !Object.hasOwn(cfg.vault.mounts, mount)) {
        return reply.status(404).send({ errors: ['no handler for route "auth/' + mount.replace(/[^\w.-]/g, '') + '/login". route entry not found.'] });
      }
      const body = parseVaultLogin(bodyText(request));
      roleName = body.role ?? cfg.vault.mounts[mount]?.defaultRole;
      const auth = await broker.vaultLogin(mount, body.role, body.jwt, requestMeta(request));
      return reply.status(200).send(vaultLoginResponse(auth));
    } catch (err) {
      const e = err instanceof VaultError ? err : (() => {
        const x = unexpected(err);
        return vaultErrorFor(x.kind, x.code, roleName);
      })();
      return reply.status(e.status).send({ errors: [e.text] });
    }
  });

  // ---- AWS STS Query API (policy.md §12.3) ----
  // AWS also takes the Query API over GET; we do not: the web identity token would travel in the URL,
  // where proxies, access logs and browser history keep it. Every AWS SDK sends POST.
  app.get('/', async (request, reply) => {
    const meta = requestMeta(request);
    reply.header('content-type', 'text/xml').header('x-amzn-requestid', meta.requestId).header('allow', 'POST');
    return reply.status(405).send(stsErrorXml('InvalidAction', 'Send AssumeRoleWithWebIdentity as a form POST: this endpoint refuses the token in a URL (query strings end up in logs).', meta.requestId));
  });
  app.post('/', async (request, reply) => {
    const meta = requestMeta(request);
    reply.header('content-type', 'text/xml').header('x-amzn-requestid', meta.requestId);
    try {
      if (!cfg.sts.enabled) throw new StsError('InvalidAction', 400, 'AssumeRoleWithWebIdentity is not enabled on this endpoint');
      const form = parseForm(bodyText(request));
      const flat: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(form)) flat[k] = v.length === 1 ? v[0]! : v;
      const req = parseStsForm(flat);
      const out = await broker.stsAssume(req, meta);
      return reply.status(200).send(stsSuccessXml(out));
    } catch (err) {
      let e: StsError;
      if (err instanceof StsError) e = err;
      else {
        const x = unexpected(err);
        e = x.code === 'malformed_policy' ? new StsError('MalformedPolicyDocument', 400, 'The policy is not in the valid JSON format.') : x.code === 'duration_exceeds_role_max' ? new StsError('ValidationError', 400, x.message) : stsErrorFor(x.kind, x.code);
      }
      return reply.status(e.httpStatus).send(stsErrorXml(e.code, e.message, meta.requestId));
    }
  });
}

function toPypi(e: ExchangeError): PypiError {
  if (e.kind === 'denied' || e.kind === 'bad_request') {
    const d = e.description;
    if (d !== undefined && (d.startsWith('valid token') || e.kind === 'bad_request')) return new PypiError(e.kind === 'bad_request' ? 'invalid-payload' : 'invalid-publisher', d);
    return pypiErrorFor(e.kind, { description: d });
  }
  if (e.kind === 'not_enabled') return pypiErrorFor(e.kind, { provider: e.description });
  return pypiErrorFor(e.kind);
}

function readForm(type: string, body: string): Form {
  if (type === 'application/json') return formFromJson(body);
  if (type === 'application/x-www-form-urlencoded' || type === '') return parseForm(body);
  throw new OAuthError('invalid_request', 'unsupported_content_type');
}
