import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CiConfig } from '../../src/issuer/id-tokens.ts';
import { expandVariables } from '../../src/issuer/expand.ts';
import { expansionVariables, parseJobContext } from '../../src/issuer/context.ts';
import { buildIssuer, decodePayload, f7Variables, type IssuerHarness } from './helpers.ts';

function rejects(yaml: string, job: string, pattern: RegExp): void {
  assert.throws(
    () => CiConfig.parse(yaml).jobTokenConfig(job),
    (err: Error & { code?: string }) => {
      assert.ok(['id_token_config_error', 'claim_reserved', 'claim_invalid'].includes(err.code ?? ''), err.code);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('id_tokens parsing (issuer.md §4)', () => {
  test('a map of names to {aud}; string aud stays a string, a list stays a list', () => {
    const cfg = CiConfig.parse('job:\n  id_tokens:\n    A:\n      aud: one\n    B:\n      aud: [two]\n    C:\n      aud:\n        - x\n        - y\n').jobTokenConfig('job');
    assert.equal(cfg.idTokensSource, 'job');
    assert.deepEqual(cfg.idTokens.map((t) => [t.name, t.aud]), [['A', 'one'], ['B', ['two']], ['C', ['x', 'y']]]);
  });

  test('default:id_tokens applies to jobs without their own', () => {
    const cfg = CiConfig.parse('default:\n  id_tokens:\n    D:\n      aud: d\njob:\n  script: [x]\n').jobTokenConfig('job');
    assert.equal(cfg.idTokensSource, 'default');
    assert.deepEqual(cfg.idTokens.map((t) => t.name), ['D']);
  });

  test("a job's id_tokens replace default:id_tokens, never merge (#419750)", () => {
    const cfg = CiConfig.parse('default:\n  id_tokens:\n    D:\n      aud: d\njob:\n  id_tokens:\n    J:\n      aud: j\n').jobTokenConfig('job');
    assert.deepEqual(cfg.idTokens.map((t) => t.name), ['J']);
  });

  test('inherit:default:false and a keyword list without id_tokens drop the default', () => {
    const yaml = (inherit: string) => `default:\n  id_tokens:\n    D:\n      aud: d\njob:\n  inherit:\n    default: ${inherit}\n  script: [x]\n`;
    assert.deepEqual(CiConfig.parse(yaml('false')).jobTokenConfig('job').idTokens, []);
    assert.deepEqual(CiConfig.parse(yaml('[image]')).jobTokenConfig('job').idTokens, []);
    assert.equal(CiConfig.parse(yaml('[id_tokens]')).jobTokenConfig('job').idTokens.length, 1);
  });

  test('extends deep-merges id_tokens as GitLab does: tokens from every level, the nearer level winning per key', () => {
    const yaml = '.a:\n  id_tokens:\n    A:\n      aud: a\n.b:\n  id_tokens:\n    B:\n      aud: b\njob:\n  extends: [.a, .b]\n';
    assert.deepEqual(CiConfig.parse(yaml).jobTokenConfig('job').idTokens.map((t) => t.name), ['A', 'B']);
    // Entries merge key by key; lists (aud) and scalars replace, never concatenate; the job wins.
    const deep = [
      '.base:',
      '  id_tokens:',
      '    VAULT:',
      '      aud: [https://vault.example.com, https://other.example.com]',
      '      lifetime: 600',
      '    PYPI:',
      '      aud: pypi',
      '.mid:',
      '  extends: .base',
      '  id_tokens:',
      '    VAULT:',
      '      aud: [https://vault.example.com]',
      'job:',
      '  extends: .mid',
      '  id_tokens:',
      '    SIGSTORE:',
      '      aud: sigstore',
      '    PYPI:',
      '      aud: testpypi',
    ].join('\n');
    const got = CiConfig.parse(deep).jobTokenConfig('job');
    assert.equal(got.idTokensSource, 'job');
    assert.deepEqual(
      got.idTokens.map((t) => [t.name, t.aud, t.lifetime]),
      [
        ['VAULT', ['https://vault.example.com'], 600],
        ['PYPI', 'testpypi', undefined],
        ['SIGSTORE', 'sigstore', undefined],
      ],
    );
    // Positions in messages still point into the file after a merge.
    rejects('.t:\n  id_tokens:\n    A:\n      aud: a\njob:\n  extends: .t\n  id_tokens:\n    A:\n      lifetime: 5\n', 'job', /:9:17: job\.id_tokens\.A\.lifetime: must be a whole number/);
    // The 20-token cap applies to the merged set.
    const many = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `    ${prefix}${String(i)}:\n      aud: x`).join('\n');
    rejects(`.t:\n  id_tokens:\n${many('T', 11)}\njob:\n  extends: .t\n  id_tokens:\n${many('J', 10)}\n`, 'job', /at most 20 ID tokens/);
    rejects('.a:\n  extends: .b\n.b:\n  extends: .a\njob:\n  extends: .a\n', 'job', /circular extends/);
    rejects('job:\n  extends: .missing\n', 'job', /^\.gitlab-ci\.yml:2:12: job\.extends: unknown job or template/);
  });

  test('YAML anchors and merge keys work, and a merge key stays shallow (unlike extends)', () => {
    const yaml = '.tokens: &tokens\n  id_tokens:\n    A:\n      aud: a\njob:\n  <<: *tokens\n  script: [x]\n';
    assert.deepEqual(CiConfig.parse(yaml).jobTokenConfig('job').idTokens.map((t) => t.name), ['A']);
    const shallow = '.tokens: &tokens\n  id_tokens:\n    A:\n      aud: a\njob:\n  <<: *tokens\n  id_tokens:\n    B:\n      aud: b\n';
    assert.deepEqual(CiConfig.parse(shallow).jobTokenConfig('job').idTokens.map((t) => t.name), ['B']);
  });

  test('aliases resolve in aud and lists; alias bombs in claim values are refused', () => {
    const ok = '.aud: &aud https://vault.example.com\n.list: &list [a, *aud]\njob:\n  id_tokens:\n    A:\n      aud: *aud\n    B:\n      aud: *list\n';
    assert.deepEqual(CiConfig.parse(ok).jobTokenConfig('job').idTokens.map((t) => t.aud), ['https://vault.example.com', ['a', 'https://vault.example.com']]);
    const levels = ['a: &a [x,x,x,x,x,x,x,x,x,x]', ...'bcdef'.split('').map((n, i) => `${n}: &${n} [${Array.from({ length: 10 }, () => `*${'abcde'[i]!}`).join(',')}]`)];
    rejects(`${levels.join('\n')}\njob:\n  jwt_claims:\n    x: *f\n`, 'job', /:9:5: job\.jwt_claims\.x: the value uses too many YAML aliases/);
  });

  test('lifetime and jwt_claims are read per entry', () => {
    const cfg = CiConfig.parse('job:\n  jwt_claims:\n    team: web\n  id_tokens:\n    A:\n      aud: a\n      lifetime: 600\n      jwt_claims:\n        purpose: deploy\n').jobTokenConfig('job');
    assert.equal(cfg.idTokens[0]!.lifetime, 600);
    assert.deepEqual(cfg.idTokens[0]!.jwtClaims, [{ name: 'purpose', value: 'deploy' }]);
    assert.deepEqual(cfg.jwtClaims, [{ name: 'team', value: 'web' }]);
  });

  test('id_tokens_on_demand: true opts the job in', () => {
    assert.equal(CiConfig.parse('job:\n  id_tokens_on_demand: true\n').jobTokenConfig('job').onDemand, true);
    rejects('job:\n  id_tokens_on_demand: "yes"\n', 'job', /:2:24: job\.id_tokens_on_demand: must be true or false/);
  });

  test('the API may send only the job keywords as JSON', () => {
    const cfg = CiConfig.fromJobObject({ id_tokens: { A: { aud: ['x'] } } }, 'job').jobTokenConfig('job');
    assert.deepEqual(cfg.idTokens[0]!.aud, ['x']);
    assert.throws(() => CiConfig.fromJobObject({ id_tokens: { A: { audience: 'x' } } }, 'job').jobTokenConfig('job'), /request: job\.id_tokens\.A\.audience: unknown key/);
  });

  describe('errors carry file:line:col', () => {
    const cases: [string, string, RegExp][] = [
      ['YAML syntax', 'job:\n  id_tokens: [\n', /^\.gitlab-ci\.yml:\d+:\d+: YAML syntax error/],
      ['duplicate keys', 'job:\n  id_tokens:\n    A:\n      aud: a\n    A:\n      aud: b\n', /^\.gitlab-ci\.yml:5:5: YAML syntax error: Map keys must be unique/],
      ['unknown job', 'job:\n  script: [x]\n', /job "nope" not found/],
      ['id_tokens not a map', 'job:\n  id_tokens: [a]\n', /^\.gitlab-ci\.yml:2:14: job\.id_tokens: must be a mapping/],
      ['aud missing', 'job:\n  id_tokens:\n    A:\n      lifetime: 60\n', /^\.gitlab-ci\.yml:4:7: job\.id_tokens\.A\.aud: aud is required/],
      ['entry not a map', 'job:\n  id_tokens:\n    A: x\n', /^\.gitlab-ci\.yml:3:8: job\.id_tokens\.A: must be a mapping/],
      ['unknown entry key', 'job:\n  id_tokens:\n    A:\n      aud: a\n      scope: x\n', /^\.gitlab-ci\.yml:5:7: job\.id_tokens\.A\.scope: unknown key "scope": an id_tokens entry accepts only aud, lifetime and jwt_claims/],
      ['aud number', 'job:\n  id_tokens:\n    A:\n      aud: 5\n', /^\.gitlab-ci\.yml:4:12: job\.id_tokens\.A\.aud: must be a string or a list of strings/],
      ['aud list with a number', 'job:\n  id_tokens:\n    A:\n      aud: [a, 5]\n', /^\.gitlab-ci\.yml:4:16: job\.id_tokens\.A\.aud\[1\]: must be a string/],
      ['aud empty list', 'job:\n  id_tokens:\n    A:\n      aud: []\n', /aud list must not be empty/],
      ['aud empty string', 'job:\n  id_tokens:\n    A:\n      aud: ""\n', /each audience is 1 to 512/],
      ['11 audiences', `job:\n  id_tokens:\n    A:\n      aud: [${Array.from({ length: 11 }, (_, i) => `a${String(i)}`).join(', ')}]\n`, /at most 10 audiences/],
      ['bad token name', 'job:\n  id_tokens:\n    1BAD:\n      aud: a\n', /^\.gitlab-ci\.yml:3:5: job\.id_tokens: token name "1BAD" must match/],
      ['predefined variable name', 'job:\n  id_tokens:\n    CI_JOB_TOKEN:\n      aud: a\n', /would overwrite a predefined variable/],
      ['21 tokens', `job:\n  id_tokens:\n${Array.from({ length: 21 }, (_, i) => `    T${String(i)}:\n      aud: a\n`).join('')}`, /at most 20 ID tokens per job/],
      ['lifetime too short', 'job:\n  id_tokens:\n    A:\n      aud: a\n      lifetime: 30\n', /^\.gitlab-ci\.yml:5:17: job\.id_tokens\.A\.lifetime: must be a whole number of seconds, at least 60/],
      ['lifetime not integer', 'job:\n  id_tokens:\n    A:\n      aud: a\n      lifetime: 1.5\n', /lifetime: must be a whole number/],
      ['reserved claim in jwt_claims (claim_reserved)', 'job:\n  id_tokens:\n    A:\n      aud: a\n      jwt_claims:\n        project_path: evil\n', /^\.gitlab-ci\.yml:6:9: job\.id_tokens\.A\.jwt_claims\.project_path: .*built-in or reserved/],
      ['email is reserved', 'job:\n  jwt_claims:\n    email: a@b\n', /:3:5: job\.jwt_claims\.email: .*reserved/],
      ['bad claim value', 'job:\n  jwt_claims:\n    nested:\n      a: b\n', /job\.jwt_claims\.nested: .*a value is a string/],
      ['!reference', 'job:\n  id_tokens: !reference [.x, id_tokens]\n', /!reference is not supported/],
      ['hidden job', '.t:\n  id_tokens:\n    A:\n      aud: a\n', /not a runnable job/],
      ['root not a map', '- a\n- b\n', /must be a mapping of jobs/],
    ];
    for (const [name, yaml, pattern] of cases) {
      test(name, () => rejects(yaml, name === 'unknown job' ? 'nope' : name === 'hidden job' ? '.t' : 'job', pattern));
    }
  });

  test('jobNames lists runnable jobs only', () => {
    assert.deepEqual(CiConfig.parse('stages: [a]\ndefault:\n  image: x\n.hidden:\n  script: [x]\nbuild:\n  script: [x]\n').jobNames(), ['build']);
  });
});

describe('variable expansion in aud (issuer.md §4)', () => {
  const vars = new Map([['HOST', 'vault.example.com'], ['EMPTY', '']]);
  test('$VAR and ${VAR}, once, never recursive; $$ is a literal $', () => {
    assert.equal(expandVariables('https://$HOST', vars), 'https://vault.example.com');
    assert.equal(expandVariables('https://${HOST}/x', vars), 'https://vault.example.com/x');
    assert.equal(expandVariables('$$HOST', vars), '$HOST');
    assert.equal(expandVariables('$UNKNOWN', vars), '');
    assert.equal(expandVariables('$X', new Map([['X', '$HOST']])), '$HOST');
  });

  let h: IssuerHarness;
  before(async () => {
    h = await buildIssuer({});
  });
  after(async () => h.close());

  const mint = (yaml: string, jobVars: Record<string, string> = {}) => {
    const vars = f7Variables();
    return h.module.core.issueJob({ context: parseJobContext(vars), job: CiConfig.parse(yaml).jobTokenConfig('deploy'), variables: expansionVariables(vars, jobVars) });
  };

  test('expands element by element against job and predefined variables; predefined ones win', () => {
    const out = mint('deploy:\n  id_tokens:\n    A:\n      aud: ["https://$AUD_HOST", "$CI_PROJECT_PATH"]\n', { AUD_HOST: 'sts.example.com', CI_PROJECT_PATH: 'forged/path' });
    assert.deepEqual(decodePayload(out.tokens.A!).aud, ['https://sts.example.com', 'acme/platform/api']);
  });

  test('an audience empty after expansion refuses the mint (F3)', () => {
    assert.throws(() => mint('deploy:\n  id_tokens:\n    A:\n      aud: $NOPE\n'), (e: Error & { code?: string }) => e.code === 'id_token_config_error' && /empty after variable expansion/.test(e.message));
  });

  test('an audience longer than 512 characters after expansion is refused', () => {
    assert.throws(() => mint('deploy:\n  id_tokens:\n    A:\n      aud: $LONG\n', { LONG: 'a'.repeat(513) }), /longer than 512/);
  });

  test('duplicate audiences after expansion are refused', () => {
    assert.throws(() => mint('deploy:\n  id_tokens:\n    A:\n      aud: [$X, x]\n', { X: 'x' }), /must not repeat/);
  });

  test('one signed token per name, all or nothing', () => {
    const out = mint('deploy:\n  id_tokens:\n    A:\n      aud: a\n    B:\n      aud: b\n');
    assert.deepEqual(Object.keys(out.tokens), ['A', 'B']);
    assert.notEqual(decodePayload(out.tokens.A!).jti, decodePayload(out.tokens.B!).jti);
    assert.throws(() => mint('deploy:\n  id_tokens:\n    A:\n      aud: a\n    B:\n      aud: $NOPE\n'), /empty after variable expansion/);
  });
});

describe('lifetime (issuer.md §5, R2)', () => {
  let h: IssuerHarness;
  before(async () => {
    h = await buildIssuer({ issuer: { maxIdTokenLifetime: 1800 } });
  });
  after(async () => h.close());
  const life = (yaml: string, timeout?: string) => {
    const vars = f7Variables();
    if (timeout === undefined) delete (vars as Record<string, string | undefined>).CI_JOB_TIMEOUT;
    else vars.CI_JOB_TIMEOUT = timeout;
    const out = h.module.core.issueJob({ context: parseJobContext(vars), job: CiConfig.parse(yaml).jobTokenConfig('deploy'), variables: expansionVariables(vars) });
    const c = decodePayload(out.tokens.A!);
    return (c.exp as number) - (c.iat as number);
  };
  const plain = 'deploy:\n  id_tokens:\n    A:\n      aud: a\n';
  test('default: the job timeout', () => assert.equal(life(plain, '900'), 900));
  test('no timeout: 300 s', () => assert.equal(life(plain), 300));
  test('clamped to the instance maximum', () => assert.equal(life(plain, '7200'), 1800));
  test('per-token lifetime overrides', () => assert.equal(life('deploy:\n  id_tokens:\n    A:\n      aud: a\n      lifetime: 120\n', '900'), 120));
  test('per-token lifetime clamped to the job timeout', () => assert.equal(life('deploy:\n  id_tokens:\n    A:\n      aud: a\n      lifetime: 1200\n', '600'), 600));
  test('per-token lifetime clamped to the instance maximum', () => assert.equal(life('deploy:\n  id_tokens:\n    A:\n      aud: a\n      lifetime: 5000\n'), 1800));
});
