import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CaKeyMaterial } from './ca-keys.ts';
import { configurationIssuers, type CaIssuerConfig } from './issuer-config.ts';
import { FulcioError, type CaService, type SigningRequest, type SigningResult } from './service.ts';

/** Fulcio allows 4 MiB; we cap request bodies at 64 KiB (signing-ca.md §1, ours). */
export const CA_BODY_LIMIT = 64 * 1024;

export interface CaRoutesOptions {
  service: CaService;
  keys: () => CaKeyMaterial;
  issuerConfig: CaIssuerConfig;
  onIssued?: (result: SigningResult) => void;
  onRejected?: (err: FulcioError) => void;
}

class BadRequest extends FulcioError {
  constructor(message: string, code = 'request_invalid') {
    super(3, message, code);
  }
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads a field by its proto JSON name or its original (snake_case) name, as the gateway does. */
function field(obj: Json, camel: string, snake: string): unknown {
  if (camel !== snake && obj[camel] !== undefined && obj[snake] !== undefined) throw new BadRequest(`field ${camel} is set twice`);
  return obj[camel] ?? obj[snake];
}

function bytesField(v: unknown, name: string): Buffer | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) throw new BadRequest(`invalid value for bytes field ${name}`);
  return Buffer.from(v, 'base64');
}

function stringField(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new BadRequest(`invalid value for string field ${name}`);
  return v;
}

function parseJsonBody(body: unknown): Json {
  if (body === undefined || body === null || (Buffer.isBuffer(body) && body.length === 0)) return {};
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : String(body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BadRequest('request body is not valid JSON', 'request_json_invalid');
  }
  if (!isObj(parsed)) throw new BadRequest('request body must be a JSON object', 'request_json_invalid');
  return parsed;
}

function bearer(request: FastifyRequest): string {
  const h = request.headers.authorization;
  if (typeof h !== 'string') return '';
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(h);
  return m ? m[1]! : '';
}

/** `CreateSigningCertificateRequest` (v2), camelCase or snake_case. */
export function parseV2Request(body: Json, bearerToken: string): SigningRequest {
  const credentials = field(body, 'credentials', 'credentials');
  let token = '';
  if (credentials !== undefined && credentials !== null) {
    if (!isObj(credentials)) throw new BadRequest('invalid value for message field credentials');
    token = stringField(field(credentials, 'oidcIdentityToken', 'oidc_identity_token'), 'oidcIdentityToken') ?? '';
  }
  if (!token) token = bearerToken;
  const pkr = field(body, 'publicKeyRequest', 'public_key_request');
  const csr = bytesField(field(body, 'certificateSigningRequest', 'certificate_signing_request'), 'certificateSigningRequest');
  if (pkr !== undefined && pkr !== null && csr !== undefined) throw new BadRequest('oneof key is already set: publicKeyRequest and certificateSigningRequest are exclusive');
  const req: SigningRequest = { token };
  if (csr !== undefined) req.csr = csr;
  if (pkr !== undefined && pkr !== null) {
    if (!isObj(pkr)) throw new BadRequest('invalid value for message field publicKeyRequest');
    const pk = field(pkr, 'publicKey', 'public_key');
    if (pk !== undefined && pk !== null) {
      if (!isObj(pk)) throw new BadRequest('invalid value for message field publicKey');
      // `algorithm` is ignored: the key says what it is (signing-ca.md §2.1).
      const content = stringField(pk.content, 'content');
      if (content !== undefined) req.publicKey = content;
    }
    const pop = bytesField(field(pkr, 'proofOfPossession', 'proof_of_possession'), 'proofOfPossession');
    if (pop !== undefined) req.proofOfPossession = pop;
  }
  return req;
}

/** Legacy v1 body: `publicKey.content` and `signedEmailAddress` are base64 bytes; Bearer token only. */
export function parseV1Request(body: Json, bearerToken: string): SigningRequest {
  const req: SigningRequest = { token: bearerToken };
  const csr = bytesField(field(body, 'certificateSigningRequest', 'certificate_signing_request'), 'certificateSigningRequest');
  if (csr !== undefined) req.csr = csr;
  const pk = field(body, 'publicKey', 'public_key');
  if (pk !== undefined && pk !== null) {
    if (!isObj(pk)) throw new BadRequest('invalid value for message field publicKey');
    const content = bytesField(pk.content, 'content');
    if (content !== undefined) req.publicKey = content;
  }
  const sig = bytesField(field(body, 'signedEmailAddress', 'signed_email_address'), 'signedEmailAddress');
  if (sig !== undefined) req.proofOfPossession = sig;
  return req;
}

function sendError(reply: FastifyReply, err: FulcioError): FastifyReply {
  return reply.status(err.httpStatus).type('application/json').send({ code: err.grpcCode, message: err.clientMessage, details: [] });
}

function certificateFingerprint(leafPem: string): string {
  return createHash('sha256').update(leafPem).digest('hex').slice(0, 16);
}

export function registerCaRoutes(app: FastifyInstance, opts: CaRoutesOptions): void {
  // The gateway accepts any content type as JSON; parse the raw bytes ourselves under our own limit.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: CA_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('access-control-allow-origin', '*');
    for (const name of Object.keys(reply.getHeaders())) if (name.toLowerCase().startsWith('grpc-')) reply.removeHeader(name);
    return payload;
  });

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, request, reply) => {
    if (error instanceof FulcioError) {
      opts.onRejected?.(error);
      request.log.info({ code: error.code, detail: error.detail }, 'signing certificate refused');
      return sendError(reply, error);
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, new BadRequest('request body too large', 'request_too_large'));
    if (error.statusCode !== undefined && error.statusCode < 500) return sendError(reply, new BadRequest(error.message));
    request.log.error({ err: error }, 'signing CA internal error');
    return sendError(reply, new FulcioError(13, 'error communicating with CA backend', 'internal_error'));
  });

  const logIssued = (request: FastifyRequest, result: SigningResult): void => {
    opts.onIssued?.(result);
    request.log.info(
      {
        registration: result.registration,
        iss: result.iss,
        jti: result.jti,
        kid: result.kid,
        projectId: result.projectId,
        keyFingerprint: result.keyFingerprint,
        certificate: certificateFingerprint(result.chainPem[0]!),
        notAfter: result.notAfter,
      },
      'signing certificate issued',
    );
  };

  const preflight = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .status(204)
      .header('access-control-allow-methods', 'GET, POST, OPTIONS')
      .header('access-control-allow-headers', 'authorization, content-type')
      .send();
  for (const path of ['/api/v2/signingCert', '/api/v1/signingCert', '/api/v2/trustBundle', '/api/v2/configuration', '/api/v1/rootCert']) {
    app.options(path, preflight);
  }

  app.post('/api/v2/signingCert', { bodyLimit: CA_BODY_LIMIT }, async (request, reply) => {
    const req = parseV2Request(parseJsonBody(request.body), bearer(request));
    const result = await opts.service.issue(req);
    logIssued(request, result);
    return reply
      .status(200)
      .type('application/json')
      .send({ signedCertificateDetachedSct: { chain: { certificates: result.chainPem }, signedCertificateTimestamp: '' } });
  });

  app.post('/api/v1/signingCert', { bodyLimit: CA_BODY_LIMIT }, async (request, reply) => {
    const req = parseV1Request(parseJsonBody(request.body), bearer(request));
    const result = await opts.service.issue(req);
    logIssued(request, result);
    return reply.status(201).type('application/pem-certificate-chain').send(result.chainPem.join('\n'));
  });

  app.get('/api/v2/trustBundle', async (_request, reply) => {
    const bundle = opts.keys().trustBundle;
    return reply.type('application/json').send({ chains: bundle.map((certificates) => ({ certificates })) });
  });

  app.get('/api/v1/rootCert', async (_request, reply) => {
    const pems = [...new Set(opts.keys().trustBundle.flat())];
    return reply.type('application/pem-certificate-chain').send(pems.join('\n') + '\n');
  });

  app.get('/api/v2/configuration', async (_request, reply) => {
    return reply.type('application/json').send({ issuers: configurationIssuers(opts.issuerConfig) });
  });
}
