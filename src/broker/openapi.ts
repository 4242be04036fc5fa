/** OpenAPI 3.1 description of /admin/v1, served at /admin/v1/openapi.json. */
const json = (schema: Record<string, unknown> = { type: 'object' }) => ({ content: { 'application/json': { schema } } });
const ok = (description: string, schema?: Record<string, unknown>) => ({ description, ...json(schema) });
const errors = {
  '400': ok('Invalid input', { $ref: '#/components/schemas/Error' }),
  '401': ok('Missing or wrong admin token', { $ref: '#/components/schemas/Error' }),
  '403': ok('Admin API disabled (no admin token configured)', { $ref: '#/components/schemas/Error' }),
  '404': ok('Not found, or not available in this deployment', { $ref: '#/components/schemas/Error' }),
};
const op = (summary: string, extra: Record<string, unknown> = {}, success: Record<string, unknown> = { '200': ok('OK') }) => ({
  summary,
  ...extra,
  responses: { ...errors, ...success },
});
const pathParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
const query = (name: string, type = 'string', description = '') => ({ name, in: 'query', required: false, schema: { type }, description });
const auditFilters = [
  query('since', 'integer', 'unix seconds, inclusive'),
  query('until', 'integer', 'unix seconds, exclusive'),
  query('endpoint', 'string', 'pypi | oauth | vault | sts'),
  query('outcome', 'string', 'allow | deny | error'),
  query('reason'),
  query('registration'),
  query('sub'),
  query('jti'),
  query('role'),
  query('credential_id'),
  query('client_ip'),
  query('after', 'string', 'pagination cursor: the `next` of the previous page'),
];

export const ADMIN_OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'ci-oidc broker admin API', version: '1', description: 'Issuers, roles, trusted publishers, signing keys, credentials and the audit log. Every operation needs `Authorization: Bearer <admin token>`.' },
  servers: [{ url: '/' }],
  security: [{ adminToken: [] }],
  components: {
    securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'CI_OIDC_ADMIN_TOKEN (or broker.adminToken)' } },
    schemas: {
      Error: { type: 'object', required: ['error', 'message'], properties: { error: { type: 'string', description: 'stable snake_case code' }, message: { type: 'string' } } },
      AuditRecord: {
        type: 'object',
        properties: {
          ...Object.fromEntries(
            ['id', 'endpoint', 'outcome', 'reason', 'registration', 'iss', 'sub', 'jti', 'kid', 'project_id', 'job_id', 'pipeline_id', 'role', 'credential_id', 'client_ip', 'request_id'].map((k) => [k, { type: ['string', 'null'] }]),
          ),
          at: { type: 'integer' },
          detail: { type: ['object', 'null'] },
        },
      },
      RoleDocument: { type: 'object', description: 'policy.md §2', required: ['name', 'issuer', 'audiences', 'when'] },
      Publisher: { type: 'object', description: 'trusted-publishing.md §2', required: ['provider', 'registration', 'owner', 'project', 'workflow'] },
      IssuerRegistration: {
        type: 'object',
        description: 'A verifier.issuers config entry (docs/verifier.md), validated by the same rules; no file forms (staticJwksFile, caCertFile). Admin registrations must use https.',
        required: ['id', 'issuer'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$' },
          issuer: { type: 'string', description: 'exact iss, canonical https URL' },
          profile: { enum: ['gitlab', 'github', 'buildkite', 'circleci', 'forgejo', 'ci-oidc', 'generic'], default: 'generic' },
          tenant: { type: ['string', 'null'], default: null },
          shared: { type: 'boolean' },
          keys: {
            default: 'discovery',
            oneOf: [
              { const: 'discovery' },
              { type: 'object', required: ['jwksUri'], additionalProperties: false, properties: { jwksUri: { type: 'string', format: 'uri' } } },
              { type: 'object', required: ['staticJwks'], additionalProperties: false, properties: { staticJwks: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', maxItems: 50, items: { type: 'object' } } } } } },
            ],
          },
          caCertPem: { type: 'string' },
          algorithms: { type: 'array', items: { type: 'string' }, default: ['RS256'] },
          leeway: { type: 'integer', minimum: 0, maximum: 60, default: 30 },
          maxLifetime: { type: 'integer', minimum: 1, maximum: 604800, default: 86400 },
          requireJti: { type: 'boolean' },
          instanceHost: { type: 'string' },
          jwksHostAllowlist: { type: 'array', items: { type: 'string' }, default: [] },
          allowInsecureLoopback: { type: 'boolean', default: false, description: 'test servers only (verifier.adminIssuersAllowInsecureLoopback)' },
        },
      },
      Issuer: {
        type: 'object',
        required: ['id', 'issuer', 'profile', 'tenant', 'shared', 'instanceHost', 'source'],
        properties: {
          id: { type: 'string' },
          issuer: { type: 'string' },
          profile: { type: 'string' },
          tenant: { type: ['string', 'null'] },
          shared: { type: 'boolean' },
          instanceHost: { type: 'string' },
          source: { enum: ['config', 'admin'], description: 'config: from the server config, removable only there' },
          registration: { $ref: '#/components/schemas/IssuerRegistration' },
          createdBy: { type: 'string' },
          createdAt: { type: 'integer' },
          updatedAt: { type: 'integer' },
        },
      },
      ValidationError: {
        type: 'object',
        required: ['error', 'message', 'problems'],
        properties: { error: { const: 'issuer_invalid' }, message: { type: 'string' }, problems: { type: 'array', items: { type: 'string' } } },
      },
    },
  },
  paths: {
    '/admin/v1/issuers': {
      get: op('List issuer registrations (config and admin)', {}, { '200': ok('Registrations', { type: 'object', properties: { issuers: { type: 'array', items: { $ref: '#/components/schemas/Issuer' } } } }) }),
      post: op(
        'Register an issuer; stored, and applied by every replica within verifier.registrationRefreshSeconds. Keys are fetched (hardened, discovery issuer checked) on first use.',
        { requestBody: json({ $ref: '#/components/schemas/IssuerRegistration' }) },
        {
          '201': ok('Registered', { type: 'object', properties: { issuer: { $ref: '#/components/schemas/Issuer' } } }),
          '400': ok('Invalid registration (issuer_invalid, every problem listed)', { $ref: '#/components/schemas/ValidationError' }),
          '409': ok('issuer_id_taken or issuer_taken (same iss and tenant)', { $ref: '#/components/schemas/Error' }),
        },
      ),
    },
    '/admin/v1/issuers/{id}': {
      delete: op('Remove an issuer registered through the admin API (drops its key cache)', { parameters: [pathParam('id')] }, {
        '204': { description: 'Removed' },
        '409': ok('issuer_config_defined: the registration comes from the server config', { $ref: '#/components/schemas/Error' }),
      }),
    },
    '/admin/v1/roles': { get: op('List roles', { parameters: [query('registration')] }) },
    '/admin/v1/roles/{name}': {
      get: op('Get a role', { parameters: [pathParam('name')] }),
      put: op('Create or replace a role (validated and linted)', { parameters: [pathParam('name')], requestBody: json({ $ref: '#/components/schemas/RoleDocument' }) }),
      delete: op('Delete a role', { parameters: [pathParam('name')] }, { '204': { description: 'Deleted' } }),
    },
    '/admin/v1/roles/{name}/reset-pins': { post: op('Audited reset of recorded ID pins', { parameters: [pathParam('name')], requestBody: json({ type: 'object', required: ['reason'], properties: { reason: { type: 'string' } } }) }) },
    '/admin/v1/roles/import': {
      post: op('Import roles from AWS trust policies, Vault JWT roles, octo-sts, GCP or Kubernetes files', {
        requestBody: json({ type: 'object', required: ['format', 'source'], properties: { format: { enum: ['aws', 'vault', 'octo-sts', 'gcp', 'k8s'] }, source: {}, options: { type: 'object' }, dryRun: { type: 'boolean' } } }),
      }),
    },
    '/admin/v1/explain': {
      post: op('Explain a decision for a token (operators only)', { requestBody: json({ type: 'object', required: ['token'], properties: { token: { type: 'string' }, role: { type: 'string' }, publisher: { type: 'boolean' }, audiences: { type: 'array', items: { type: 'string' } } } }) }),
    },
    '/admin/v1/publishers': {
      get: op('List trusted publishers', { parameters: [query('registration'), query('project')] }),
      post: op('Create a trusted publisher', { requestBody: json({ $ref: '#/components/schemas/Publisher' }) }, { '201': ok('Created') }),
    },
    '/admin/v1/publishers/{id}': {
      get: op('Get a publisher', { parameters: [pathParam('id')] }),
      delete: op('Delete a publisher', { parameters: [pathParam('id')] }, { '204': { description: 'Deleted' } }),
    },
    '/admin/v1/publishers/{id}/projects': { put: op('Set the projects a publisher may upload to', { parameters: [pathParam('id')], requestBody: json({ type: 'object', properties: { projects: { type: 'array', items: { type: 'string' } } } }) }) },
    '/admin/v1/publishers/{id}/reset-pins': { post: op('Audited reset of publisher ID pins', { parameters: [pathParam('id')], requestBody: json() }) },
    '/admin/v1/pending-publishers': {
      get: op('List pending publishers'),
      post: op('Create a pending publisher (projectName required)', { requestBody: json() }, { '201': ok('Created') }),
    },
    '/admin/v1/pending-publishers/{id}': { delete: op('Delete a pending publisher', { parameters: [pathParam('id')] }, { '204': { description: 'Deleted' } }) },
    '/admin/v1/keys': { get: op('List issuer signing keys (public parts)') },
    '/admin/v1/keys/rotate': { post: op('Rotate the issuer signing key now') },
    '/admin/v1/credentials': { get: op('List minted credentials (metadata only, never the secret or its hash)', { parameters: [query('registration'), query('sub'), query('role'), query('active', 'string', 'true: only live ones'), query('limit', 'integer')] }) },
    '/admin/v1/credentials/{id}/revoke': { post: op('Revoke one credential', { parameters: [pathParam('id')], requestBody: json() }) },
    '/admin/v1/credentials/revoke': { post: op('Revoke every credential minted from one ID token', { requestBody: json({ type: 'object', required: ['registration', 'jti'], properties: { registration: { type: 'string' }, jti: { type: 'string' }, reason: { type: 'string' } } }) }) },
    '/admin/v1/audit': {
      get: op('Search the audit log (oldest first, paged)', { parameters: [...auditFilters, query('limit', 'integer', '1..1000, default 100')] }, {
        '200': ok('Records', { type: 'object', properties: { records: { type: 'array', items: { $ref: '#/components/schemas/AuditRecord' } }, next: { type: ['string', 'null'] } } }),
      }),
    },
    '/admin/v1/audit/export': { get: op('Export matching audit records as JSON lines', { parameters: auditFilters }, { '200': { description: 'JSON lines', content: { 'application/x-ndjson': { schema: { type: 'string' } } } } }) },
  },
} as const;
