import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { CaAuthenticator, AuthenticatedToken } from '../../src/ca/authenticate.ts';
import { IdentityError, type CertificateIdentity } from '../../src/ca/identity.ts';
import { compileIssuerConfig, type CaIssuer } from '../../src/ca/issuer-config.ts';
import { builtinMetadata, legacyPrincipals } from '../../src/ca/module.ts';
import { OID } from '../../src/ca/oids.ts';
import { CaService } from '../../src/ca/service.ts';
import { F1, F2, F5, F7 } from './helpers.ts';

const service = new CaService({
  authenticator: {} as CaAuthenticator,
  keys: () => {
    throw new Error('not used');
  },
  metadata: builtinMetadata(),
  legacy: legacyPrincipals(),
  clock: () => 0,
  clientSigningAlgorithms: ['ecdsa-sha2-256-nistp256'],
  lenientClaims: false,
  urlDefaults: new Map([['https://ci.example.com', 'https://ci.example.com']]),
});

const issuers = compileIssuerConfig(
  {
    OIDCIssuers: {
      'https://gitlab.com': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline' },
      'https://gitlab.example.com': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline' },
      'https://gitlab.acme.example': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline', DefaultTemplateValues: { url: 'https://gitlab.acme.example' } },
      'https://token.actions.githubusercontent.com': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'github-workflow' },
      'https://gitlab.legacy.test': { ClientID: 'sigstore', Type: 'gitlab-pipeline' },
      'https://github.legacy.test': { ClientID: 'sigstore', Type: 'github-workflow' },
      'https://lenient.test': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline', LenientClaims: true },
      'https://ci.example.com': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'ci-oidc' },
    },
  },
  builtinMetadata(),
);

function identity(issuerUrl: string, claims: Record<string, unknown>): CertificateIdentity {
  const issuer = issuers.oidcIssuers.get(issuerUrl) as CaIssuer;
  const all: Record<string, unknown> = { ...claims, iss: issuerUrl };
  const auth = { issuer, iss: issuerUrl, sub: all.sub as string, token: { claims: all } } as unknown as AuthenticatedToken;
  return service.identityFor(auth);
}

/** [oid suffix, raw?, value] in emission order, for exact comparison. */
const table = (id: CertificateIdentity): Array<[string, 'raw' | 'der', string]> =>
  id.extensions.map((e) => [e.oid.replace('1.3.6.1.4.1.57264.1.', '.'), e.raw ? 'raw' : 'der', e.value]);

describe("Fulcio's gitlab-pipeline template (signing-ca.md §8.1, §11.5)", () => {
  test('F2: every extension and the SAN, in Fulcio order', () => {
    const id = identity('https://gitlab.com', F2);
    assert.equal(id.san, 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main');
    assert.deepEqual(table(id), [
      ['.1', 'raw', 'https://gitlab.com'],
      ['.8', 'der', 'https://gitlab.com'],
      ['.9', 'der', 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main'],
      ['.10', 'der', '93969f556a29853b507bdcd9dec6b4217a4ea2e7'],
      ['.11', 'der', 'gitlab-hosted'],
      ['.12', 'der', 'https://gitlab.com/foo/bar'],
      ['.13', 'der', '93969f556a29853b507bdcd9dec6b4217a4ea2e7'],
      ['.14', 'der', 'refs/heads/main'],
      ['.15', 'der', '55235664'],
      ['.16', 'der', 'https://gitlab.com/foo'],
      ['.17', 'der', '123'],
      ['.18', 'der', 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main'],
      ['.19', 'der', '93969f556a29853b507bdcd9dec6b4217a4ea2e7'],
      ['.20', 'der', 'push'],
      ['.21', 'der', 'https://gitlab.com/foo/bar/-/jobs/123'],
      ['.22', 'der', 'private'],
      ['.24', 'der', 'project_path:foo/bar:ref_type:branch:ref:main'],
    ]);
  });

  test('a tag in a subgroup project', () => {
    const claims = {
      ...F2,
      namespace_path: 'grp/sub',
      project_path: 'grp/sub/proj',
      ref: 'v1.2.0',
      ref_type: 'tag',
      ref_path: 'refs/tags/v1.2.0',
      ci_config_ref_uri: 'gitlab.com/grp/sub/proj//ci/release.yml@refs/tags/v1.2.0',
      sub: 'project_path:grp/sub/proj:ref_type:tag:ref:v1.2.0',
    };
    const id = identity('https://gitlab.com', claims);
    const m = new Map(table(id).map(([k, , v]) => [k, v]));
    assert.equal(id.san, 'https://gitlab.com/grp/sub/proj//ci/release.yml@refs/tags/v1.2.0');
    assert.equal(m.get('.12'), 'https://gitlab.com/grp/sub/proj');
    assert.equal(m.get('.14'), 'refs/tags/v1.2.0');
    assert.equal(m.get('.16'), 'https://gitlab.com/grp/sub');
    assert.equal(m.get('.21'), 'https://gitlab.com/grp/sub/proj/-/jobs/123');
  });

  test('self-managed host without a url default: Fulcio output, gitlab.com in .12/.16/.21 (signing-ca.md §8.4)', () => {
    const id = identity('https://gitlab.example.com', F1);
    const m = new Map(table(id).map(([k, , v]) => [k, v]));
    assert.equal(id.san, 'https://gitlab.example.com/my-group/my-project//.gitlab-ci.yml@refs/heads/main');
    assert.equal(m.get('.8'), 'https://gitlab.example.com');
    assert.equal(m.get('.12'), 'https://gitlab.com/my-group/my-project');
    assert.equal(m.get('.16'), 'https://gitlab.com/my-group');
    assert.equal(m.get('.21'), 'https://gitlab.com/my-group/my-project/-/jobs/302');
    assert.equal(m.get('.23'), 'test-environment2', 'ci-provider emits .23 when the job has an environment');
    assert.equal(m.get('.22'), 'public');
  });

  test('self-managed host with the per-issuer url default carries its own host everywhere', () => {
    const acme = { ...F1, ci_config_ref_uri: 'gitlab.acme.example/my-group/my-project//.gitlab-ci.yml@refs/heads/main' };
    const id = identity('https://gitlab.acme.example', acme);
    const m = new Map(table(id).map(([k, , v]) => [k, v]));
    for (const k of ['.9', '.12', '.16', '.18', '.21']) assert.ok(m.get(k)!.startsWith('https://gitlab.acme.example/'), `${k}: ${m.get(k)}`);
  });

  test('missing optional environment: .23 is omitted, nothing else changes', () => {
    const { environment: _e, ...noEnv } = F1;
    const ids = table(identity('https://gitlab.example.com', noEnv)).map(([k]) => k);
    assert.equal(ids.includes('.23'), false);
    assert.equal(ids.length, 17);
  });

  test('missing ci_config_sha or project_visibility: ci-provider refuses with the raw template error', () => {
    const { ci_config_sha: _s, ...noSha } = F2;
    assert.throws(() => identity('https://gitlab.com', noSha), (e: unknown) => e instanceof IdentityError && e.clientMessage === 'value <ci_config_sha> not present in either claims or defaults. Issuer: https://gitlab.com');
    const { project_visibility: _v, ...noVis } = F2;
    assert.throws(() => identity('https://gitlab.com', noVis), /value <project_visibility> not present/);
  });

  test('a missing claim inside a {{...}} template gives Go text/template\'s error text', () => {
    const { ci_config_ref_uri: _c, ...noRef } = F2;
    assert.throws(
      () => identity('https://gitlab.com', noRef),
      (e: unknown) => e instanceof IdentityError && e.clientMessage === 'template: :1:11: executing "" at <.ci_config_ref_uri>: map has no entry for key "ci_config_ref_uri"',
    );
  });

  test('lenient issuers omit extensions whose claims are missing, never the SAN', () => {
    const { ci_config_sha: _s, project_visibility: _v, ...partial } = F2;
    const ids = table(identity('https://lenient.test', partial)).map(([k]) => k);
    assert.deepEqual(ids.filter((k) => ['.10', '.19', '.22'].includes(k)), []);
    const { ci_config_ref_uri: _c, ...noSan } = F2;
    assert.throws(() => identity('https://lenient.test', noSan), IdentityError);
  });

  test('ref_type other than branch/tag is a tag for ci-provider and an error for the legacy principal', () => {
    const odd = { ...F2, ref_type: 'merge' };
    assert.equal(new Map(table(identity('https://gitlab.com', odd)).map(([k, , v]) => [k, v])).get('.14'), 'refs/tags/main');
    assert.throws(() => identity('https://gitlab.legacy.test', odd), (e: unknown) => e instanceof IdentityError && e.message === 'unexpected ref_type: merge');
  });
});

describe('legacy gitlab-pipeline principal (pkg/identity/gitlabcom)', () => {
  test('same values as the template for F2, never .23', () => {
    const legacy = table(identity('https://gitlab.legacy.test', { ...F2, environment: 'prod' }));
    const modern = table(identity('https://gitlab.com', F2)).filter(([k]) => k !== '.1' && k !== '.8');
    assert.deepEqual(
      legacy.filter(([k]) => k !== '.1' && k !== '.8'),
      modern,
    );
  });

  test('without ci_config_sha and project_visibility: no .10/.19/.22', () => {
    const { ci_config_sha: _s, project_visibility: _v, ...partial } = F2;
    const ids = table(identity('https://gitlab.legacy.test', partial)).map(([k]) => k);
    assert.deepEqual(ids, ['.1', '.8', '.9', '.11', '.12', '.13', '.14', '.15', '.16', '.17', '.18', '.20', '.21', '.24']);
  });

  test('a missing required claim or runner_id 0 answers the identity-token message', () => {
    const { namespace_id: _n, ...noNs } = F2;
    assert.throws(() => identity('https://gitlab.legacy.test', noNs), (e: unknown) => e instanceof IdentityError && e.clientMessage === 'There was an error processing the identity token');
    assert.throws(() => identity('https://gitlab.legacy.test', { ...F2, runner_id: 0 }), /runner_id/);
  });
});

describe("Fulcio's github-workflow template", () => {
  test('F5: every extension and the SAN, in Fulcio order, .2-.6 raw', () => {
    const id = identity('https://token.actions.githubusercontent.com', F5);
    assert.equal(id.san, 'https://github.com/github/actions-oidc-debugger/.github/workflows/action-test.yml@refs/pull/27/merge');
    const wf = 'https://github.com/github/actions-oidc-debugger/.github/workflows/action-test.yml@refs/pull/27/merge';
    assert.deepEqual(table(id), [
      ['.1', 'raw', 'https://token.actions.githubusercontent.com'],
      ['.2', 'raw', 'pull_request'],
      ['.3', 'raw', '7f93a73b8273af5d35fcd70661704c1cadc57054'],
      ['.4', 'raw', 'Test Debugger Action'],
      ['.5', 'raw', 'github/actions-oidc-debugger'],
      ['.6', 'raw', 'refs/pull/27/merge'],
      ['.8', 'der', 'https://token.actions.githubusercontent.com'],
      ['.9', 'der', wf],
      ['.10', 'der', '7f93a73b8273af5d35fcd70661704c1cadc57054'],
      ['.11', 'der', 'github-hosted'],
      ['.12', 'der', 'https://github.com/github/actions-oidc-debugger'],
      ['.13', 'der', '7f93a73b8273af5d35fcd70661704c1cadc57054'],
      ['.14', 'der', 'refs/pull/27/merge'],
      ['.15', 'der', '487920697'],
      ['.16', 'der', 'https://github.com/github'],
      ['.17', 'der', '9919'],
      ['.18', 'der', wf],
      ['.19', 'der', '7f93a73b8273af5d35fcd70661704c1cadc57054'],
      ['.20', 'der', 'pull_request'],
      ['.21', 'der', 'https://github.com/github/actions-oidc-debugger/actions/runs/16055869479/attempts/1'],
      ['.22', 'der', 'public'],
      ['.24', 'der', 'repo:github/actions-oidc-debugger:pull_request'],
    ]);
  });

  test('a push to a tag with an environment and a reusable workflow from another repo', () => {
    const claims = {
      ...F5,
      event_name: 'push',
      ref: 'refs/tags/v1',
      ref_type: 'tag',
      environment: 'prod',
      job_workflow_ref: 'octo-org/shared/.github/workflows/release.yml@refs/heads/main',
      sub: 'repo:github/actions-oidc-debugger:environment:prod',
    };
    const m = new Map(table(identity('https://token.actions.githubusercontent.com', claims)).map(([k, , v]) => [k, v]));
    assert.equal(m.get('.9'), 'https://github.com/octo-org/shared/.github/workflows/release.yml@refs/heads/main');
    assert.equal(m.get('.18'), 'https://github.com/github/actions-oidc-debugger/.github/workflows/action-test.yml@refs/pull/27/merge');
    assert.equal(m.get('.14'), 'refs/tags/v1');
    assert.equal(m.get('.23'), 'prod');
    assert.equal(m.get('.6'), 'refs/tags/v1');
  });

  test('the legacy github-workflow principal: same values, never .23, all 16 claims required', () => {
    const legacy = table(identity('https://github.legacy.test', { ...F5, environment: 'prod' })).filter(([k]) => k !== '.1' && k !== '.8');
    const modern = table(identity('https://token.actions.githubusercontent.com', F5)).filter(([k]) => k !== '.1' && k !== '.8');
    assert.deepEqual(legacy, modern);
    const { run_attempt: _r, ...noAttempt } = F5;
    assert.throws(() => identity('https://github.legacy.test', noAttempt), IdentityError);
  });
});

describe('our own issuer (GitLab-shaped, url = issuer URL)', () => {
  test('F7 with config from the project: all URLs on our host, digests omitted without ci_config_sha', () => {
    const id = identity('https://ci.example.com', F7);
    const m = new Map(table(id).map(([k, , v]) => [k, v]));
    assert.equal(id.san, 'https://ci.example.com/acme/platform/api//.gitlab-ci.yml@refs/heads/main');
    assert.equal(m.get('.12'), 'https://ci.example.com/acme/platform/api');
    assert.equal(m.get('.21'), 'https://ci.example.com/acme/platform/api/-/jobs/302');
    assert.equal(m.has('.10'), false);
    assert.equal(m.get('.24'), 'project_id:20:ref_type:branch:ref:main');
  });
});

describe('claim values cannot inject into the SAN or the extensions (G1)', () => {
  const gitlab = (over: Record<string, unknown>) => () => identity('https://gitlab.com', { ...F2, ...over });

  test('control characters are refused in every output, whitespace in URI outputs', () => {
    for (const v of ['main\n', 'a\u0000b', 'x\ry', 'tab\there', 'del\u007f', 'sep\u2028']) {
      assert.throws(gitlab({ ref: v }), (e: unknown) => e instanceof IdentityError && e.clientMessage === 'There was an error processing the identity token', JSON.stringify(v));
    }
    assert.throws(gitlab({ project_path: 'foo/bar baz' }), IdentityError);
    const spaced = identity('https://token.actions.githubusercontent.com', { ...F5, workflow: 'Build and test' });
    assert.equal(spaced.extensions.find((e) => e.oid === OID.githubWorkflowName)!.value, 'Build and test', 'plain-text extensions keep spaces');
  });

  test('?, #, % and non-ASCII are percent-encoded in URI outputs; plain-text outputs keep them', () => {
    const id = identity('https://gitlab.com', { ...F2, project_path: 'foo/b?a#r%é', ci_config_ref_uri: 'gitlab.com/foo/b?a#r//.gitlab-ci.yml@refs/heads/main' });
    assert.equal(id.san, 'https://gitlab.com/foo/b%3Fa%23r//.gitlab-ci.yml@refs/heads/main');
    const m = new Map(id.extensions.map((e) => [e.oid, e.value]));
    assert.equal(m.get(OID.sourceRepositoryUri), 'https://gitlab.com/foo/b%3Fa%23r%25%C3%A9');
    const u = new URL(id.san);
    assert.equal(u.search, '');
    assert.equal(u.hash, '');
    assert.equal(u.host, 'gitlab.com');
  });

  test('dot segments, userinfo and backslashes are refused', () => {
    assert.throws(gitlab({ project_path: 'foo/../admin' }), IdentityError);
    assert.throws(gitlab({ ci_config_ref_uri: 'evil.test@gitlab.com/foo//x.yml@refs/heads/main' }), IdentityError);
    const pct = identity('https://gitlab.com', { ...F2, ci_config_ref_uri: 'gitlab.com/foo/%2e%2e/x//x.yml@refs/heads/main' });
    assert.equal(pct.san, 'https://gitlab.com/foo/%252e%252e/x//x.yml@refs/heads/main', 'an encoded dot segment is re-encoded, never decoded');
    const bs = identity('https://gitlab.com', { ...F2, project_path: 'foo\\bar' });
    assert.equal(bs.extensions.find((e) => e.oid === OID.sourceRepositoryUri)!.value, 'https://gitlab.com/foo%5Cbar');
  });

  test('property: any project_path/ref either is refused or yields a SAN that parses back to itself on the right host', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 24 }), fc.string({ maxLength: 24 }), (path, ref) => {
        let id: CertificateIdentity;
        try {
          id = identity('https://gitlab.com', { ...F2, project_path: `g/${path}`, ref, ci_config_ref_uri: `gitlab.com/g/${path}//.gitlab-ci.yml@refs/heads/${ref}` });
        } catch (e) {
          return e instanceof IdentityError;
        }
        const u = new URL(id.san);
        assert.equal(u.href, id.san);
        assert.equal(u.protocol, 'https:');
        assert.equal(u.host, 'gitlab.com');
        assert.equal(u.username + u.password + u.search + u.hash, '');
        assert.ok(u.pathname.startsWith('/g/'));
        const repo = id.extensions.find((e) => e.oid === OID.sourceRepositoryUri)!.value;
        assert.equal(decodeURIComponent(new URL(repo).pathname), `/g/${path}`);
        assert.ok(/^[\x21-\x7e]+$/.test(id.san));
        return true;
      }),
      { numRuns: 400 },
    );
  });
});
