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
  responses: { ...success, ...errors },
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
    },
  },
  paths: {
    '/admin/v1/issuers': {
      get: op('List issuer registrations'),
      post: op('Register an issuer (hardened discovery fetch and issuer check)', { requestBody: json() }, { '201': ok('Registered') }),
    },
    '/admin/v1/issuers/{id}': { delete: op('Remove an issuer registration', { parameters: [pathParam('id')] }, { '204': { description: 'Removed' } }) },
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
