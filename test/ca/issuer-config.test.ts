import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { executeTemplate, MissingKeyError, parseTemplate, TemplateError } from '../../src/ca/go-template.ts';
import { formatNumber, stringifyClaim } from '../../src/ca/go-format.ts';
import { compileIssuerConfig, configurationIssuers, findIssuer, IssuerConfigError, metaIssuerPattern, parseIssuerConfigText } from '../../src/ca/issuer-config.ts';
import { builtinMetadata } from '../../src/ca/module.ts';

const run = (src: string, data: Record<string, string>) => executeTemplate(parseTemplate(src), new Map(Object.entries(data)));

describe('Go text/template subset', () => {
  test("Fulcio's templates: fields with spaces, index with dotted names, if eq / else / end", () => {
    assert.equal(run('{{ .url }}/{{ .job_workflow_ref }}', { url: 'https://github.com', job_workflow_ref: 'o/r/w.yml@refs/heads/x' }), 'https://github.com/o/r/w.yml@refs/heads/x');
    assert.equal(run('refs/{{if eq .ref_type "branch"}}heads/{{ else }}tags/{{end}}{{ .ref }}', { ref_type: 'branch', ref: 'main' }), 'refs/heads/main');
    assert.equal(run('refs/{{if eq .ref_type "branch"}}heads/{{ else }}tags/{{end}}{{ .ref }}', { ref_type: 'tag', ref: 'v1' }), 'refs/tags/v1');
    assert.equal(run('{{.api_url}}/pipeline/{{(index . "oidc.circleci.com/pipeline-id")}}/config', { api_url: 'https://circleci.com/api/v2', 'oidc.circleci.com/pipeline-id': 'abc' }), 'https://circleci.com/api/v2/pipeline/abc/config');
    assert.equal(run('{{if eq (index . "oidc.circleci.com/ssh-rerun") "true"}}ssh-rerun{{ else }}""{{end}}', { 'oidc.circleci.com/ssh-rerun': 'false' }), '""');
    assert.equal(run('{{if eq .a "x"}}1{{else if eq .a "y"}}2{{else}}3{{end}}', { a: 'y' }), '2');
    assert.equal(run('{{if eq .a "x"}}1{{else if eq .a "y"}}2{{else}}3{{end}}', { a: 'z' }), '3');
    assert.equal(run('a {{- " b " -}} c', {}), 'a b c');
    assert.equal(run('{{/* comment */}}x{{ index . "missing" }}y', {}), 'xy', 'index yields "" for a missing key, as Go');
    assert.equal(run('<{{ .v }}>&', { v: '<b>&"' }), '<<b>&">&', 'no HTML escaping');
  });

  test("missingkey=error reproduces Go's message with the node position", () => {
    assert.throws(() => run('https://{{ .ci_config_ref_uri }}', {}), (e: unknown) => {
      assert.ok(e instanceof MissingKeyError);
      assert.equal(e.key, 'ci_config_ref_uri');
      assert.equal(e.message, 'template: :1:11: executing "" at <.ci_config_ref_uri>: map has no entry for key "ci_config_ref_uri"');
      return true;
    });
    assert.throws(() => run('{{if eq .ref_type "branch"}}x{{end}}', {}), /map has no entry for key "ref_type"/);
  });

  test('unsupported syntax fails at parse time', () => {
    for (const bad of ['{{ .a.b }}', '{{ printf "%s" .a }}', '{{ if .a }}x', '{{end}}', '{{ .a | upper }}', '{{ ', '{{ range . }}{{end}}']) {
      assert.throws(() => parseTemplate(bad), TemplateError, bad);
    }
  });

  test('claim stringification follows Go (no exponent, %v for containers, null absent)', () => {
    assert.equal(formatNumber(1), '1');
    assert.equal(formatNumber(1753000000), '1753000000');
    assert.equal(formatNumber(1e21), '1000000000000000000000');
    assert.equal(formatNumber(1.5), '1.5');
    assert.equal(formatNumber(1.5e-7), '0.00000015');
    assert.equal(stringifyClaim(true), 'true');
    assert.equal(stringifyClaim(['a', 'b']), '[a b]');
    assert.equal(stringifyClaim({ url: 'u', sha: 's' }), 'map[sha:s url:u]');
    assert.equal(stringifyClaim(null), undefined);
  });
});

describe('Fulcio-format issuer configuration', () => {
  const builtins = builtinMetadata();

  test('JSON spelling and YAML spelling compile to the same issuers', () => {
    const json = compileIssuerConfig(
      {
        OIDCIssuers: { 'https://gitlab.com': { IssuerURL: 'https://gitlab.com', ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline' } },
        MetaIssuers: { 'https://oidc.circleci.com/org/*': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'circle' } },
        CIIssuerMetadata: { circle: { DefaultTemplateValues: { api_url: 'https://circleci.com/api/v2' }, ExtensionTemplates: { BuildConfigURI: '{{.api_url}}/x' }, SubjectAlternativeNameTemplate: '{{.api_url}}/p' } },
      },
      builtins,
    );
    const yaml = parseIssuerConfigText(
      `define:
  - &gitlab-type "gitlab-pipeline"
oidc-issuers:
  https://gitlab.com:
    issuer-url: https://gitlab.com
    client-id: sigstore
    type: ci-provider
    ci-provider: *gitlab-type
meta-issuers:
  https://oidc.circleci.com/org/*:
    client-id: sigstore
    type: ci-provider
    ci-provider: circle
ci-issuer-metadata:
  circle:
    default-template-values:
      api_url: https://circleci.com/api/v2
    extension-templates:
      build-config-uri: "{{.api_url}}/x"
    subject-alternative-name-template: "{{.api_url}}/p"
`,
      builtins,
    );
    assert.deepEqual(configurationIssuers(json), configurationIssuers(yaml));
    assert.deepEqual(yaml.metadata.get('circle')!.extensions.map((e) => e.key), ['build-config-uri']);
  });

  test('meta issuers are anchored: the GHSA-59jp-pj84-45mr shapes do not match', () => {
    const re = metaIssuerPattern('https://oidc.eks.*.amazonaws.com/id/*');
    assert.ok(re.test('https://oidc.eks.us-west-2.amazonaws.com/id/ABCDEF'));
    for (const bad of [
      'http://localhost?issuer=https://oidc.eks.us-west-2.amazonaws.com/id/ABC',
      'https://oidc.eks.us-west-2.amazonaws.com/id/ABC/extra',
      'https://oidc.eks.a.b.amazonaws.com/id/ABC',
      'https://oidc.eksXus.amazonaws.com/id/ABC',
      'https://oidc.eks..amazonaws.com/id/ABC',
      'https://oidc.eks.us-west-2.amazonaws.com/id/',
    ]) {
      assert.equal(re.test(bad), false, bad);
    }
    const cfg = compileIssuerConfig({ MetaIssuers: { 'https://token.actions.githubusercontent.com/*': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'github-workflow' } } }, builtins);
    assert.ok(findIssuer(cfg, 'https://token.actions.githubusercontent.com/octocat-inc'));
    assert.equal(findIssuer(cfg, 'https://token.actions.githubusercontent.com'), undefined);
    assert.equal(findIssuer(cfg, 'https://token.actions.githubusercontent.com/a/b'), undefined);
  });

  test('load errors name every problem', () => {
    assert.throws(
      () =>
        compileIssuerConfig(
          {
            OIDCIssuers: {
              'https://a.test': { ClientID: 'sigstore', Type: 'email' },
              'https://b.test': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'nope' },
              'http://c.test': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline' },
              'https://d.test': { IssuerURL: 'https://other.test', ClientID: 'sigstore', Type: 'github-workflow' },
              'https://e.test': { ClientID: 'sigstore', Type: 'gitlab-pipeline', Bogus: 1 },
            },
            CIIssuerMetadata: { broken: { ExtensionTemplates: { 'build-signer-uri': '{{ .a' } }, m2: { ExtensionTemplates: { 'not-an-extension': 'x' }, SubjectAlternativeNameTemplate: 'x' } },
          },
          builtins,
        ),
      (e: unknown) => {
        assert.ok(e instanceof IssuerConfigError);
        const all = e.issues.join('\n');
        for (const needle of ['unsupported issuer type "email"', 'no CIIssuerMetadata entry named "nope"', 'must be https', 'differs from its key', 'unknown key "Bogus"', 'SubjectAlternativeNameTemplate: required', 'unknown extension "not-an-extension"']) {
          assert.ok(all.includes(needle), `${needle} in\n${all}`);
        }
        return true;
      },
    );
    assert.throws(() => compileIssuerConfig({ MetaIssuers: { 'https://x.test/*': { ClientID: 'sigstore', Type: 'spiffe' } } }, builtins), IssuerConfigError);
    assert.throws(() => parseIssuerConfigText('oidc-issuers: {}\noidc-issuers: {}\n', builtins), IssuerConfigError, 'duplicate keys');
    assert.throws(() => compileIssuerConfig({ OIDCIssuers: {}, 'oidc-issuers': {} }, builtins), /given twice/);
  });

  test('ChallengeClaim is published and defaults to sub', () => {
    const cfg = compileIssuerConfig({ OIDCIssuers: { 'https://x.test': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline', ChallengeClaim: 'project_path' } } }, builtins);
    assert.equal(configurationIssuers(cfg)[0]!.challengeClaim, 'project_path');
  });
});

describe('CA token authentication (no network I/O for unknown issuers)', async () => {
  const { CaAuthenticator, AuthenticationError } = await import('../../src/ca/authenticate.ts');
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const tok = (iss: string) => `${enc({ alg: 'RS256' })}.${enc({ iss, sub: 's' })}.c2ln`;

  test('unknown issuers and malformed tokens never reach a verifier; meta issuers get an LRU of verifiers', async () => {
    const made: string[][] = [];
    let verifies = 0;
    const cfg = compileIssuerConfig(
      {
        OIDCIssuers: { 'https://gitlab.com': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline' } },
        MetaIssuers: { 'https://token.actions.githubusercontent.com/*': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'github-workflow' } },
      },
      builtinMetadata(),
    );
    const auth = new CaAuthenticator({
      config: cfg,
      metaCacheSize: 3,
      makeVerifier: (regs) => {
        made.push(regs.map((r) => r.issuer));
        return {
          verify: async () => {
            verifies++;
            throw new Error('not in this test');
          },
        };
      },
    });
    assert.deepEqual(made, [['https://gitlab.com']]);
    for (const bad of [tok('https://gitlab.com/'), tok('https://evil.test'), tok('http://localhost?issuer=https://token.actions.githubusercontent.com/x'), 'a.b', '', 'x'.repeat(20001)]) {
      await assert.rejects(auth.authenticate(bad), AuthenticationError, bad.slice(0, 60));
    }
    assert.equal(verifies, 0);
    for (const slug of ['a', 'b', 'c', 'd', 'a']) await assert.rejects(auth.authenticate(tok(`https://token.actions.githubusercontent.com/${slug}`)));
    assert.equal(verifies, 5);
    assert.deepEqual(made.slice(1).map((m) => m[0]!.split('/').pop()), ['a', 'b', 'c', 'd', 'a'], 'a was evicted after d (LRU of 3)');
  });
});
