import { createPrivateKey, randomBytes, sign as cryptoSign } from 'node:crypto';
import type { BenchHarness, BenchRow } from './harness.ts';
import { Keyring, DEFAULT_ROTATION_POLICY, sealAad, type KeyringBackend, type StoredKey } from '../src/jose/keyring.ts';
import { kekFromBytes } from '../src/jose/kek.ts';
import { SIGNING_ALGS } from '../src/jose/keys.ts';
import { IssuerCore } from '../src/issuer/issuer.ts';
import { parseJobContext } from '../src/issuer/context.ts';
import { issuerConfigSchema } from '../src/issuer/config.ts';

/**
 * Tokens minted per second (full GitLab-profile claim set, custom claims, sub template, fresh jti)
 * beside raw node:crypto signing of a token of the same size with the same key. Target: >= 85%.
 */
export default async function issuerBench(h: BenchHarness): Promise<void> {
  const rows: BenchRow[] = [];
  const kek = kekFromBytes(randomBytes(32));
  const cfg = issuerConfigSchema.parse({
    issuerUrl: 'https://ci.example.com',
    algorithms: [...SIGNING_ALGS],
    groups: { acme: { subTemplate: { components: ['project_id', 'ref_type', 'ref'] }, claims: [{ name: 'cost_center', value: 'cc-1234' }] } },
  });
  const rowsStore: StoredKey[] = [];
  const backend: KeyringBackend = {
    list: async () => rowsStore.map((r) => ({ ...r })),
    insert: async (k) => void rowsStore.push({ ...k }),
    update: async (kid, state, patch) => {
      const r = rowsStore.find((x) => x.kid === kid && x.state === state);
      if (r) Object.assign(r, patch);
      return !!r;
    },
  };
  const keyring = new Keyring({
    backend,
    sealer: { seal: (p, aad) => kek.seal(p, aad), open: (s, aad) => kek.open(s, aad) },
    algs: cfg.algorithms,
    policy: DEFAULT_ROTATION_POLICY,
    clock: () => Math.floor(Date.now() / 1000),
  });
  await keyring.tick();
  const context = parseJobContext({
    CI_PROJECT_ID: '20', CI_PROJECT_PATH: 'acme/platform/api', CI_PROJECT_NAMESPACE_ID: '72', CI_PROJECT_NAMESPACE: 'acme/platform',
    CI_PROJECT_VISIBILITY: 'private', CI_PIPELINE_ID: '574', CI_PIPELINE_SOURCE: 'push', CI_JOB_ID: '302', CI_JOB_NAME: 'deploy',
    CI_JOB_TIMEOUT: '3600', CI_COMMIT_REF_NAME: 'main', CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_PROTECTED: 'true',
    CI_COMMIT_SHA: '714a629c0b401fdce83e847fc9589983fc6f46bc', GITLAB_USER_ID: '1', GITLAB_USER_LOGIN: 'dev',
    GITLAB_USER_EMAIL: 'dev@example.com', CI_OIDC_USER_ACCESS_LEVEL: 'developer', CI_RUNNER_ID: '7', CI_SERVER_HOST: 'ci.example.com',
  });

  for (const alg of SIGNING_ALGS) {
    // The first configured algorithm signs: one issuer configuration per algorithm, one shared keyring.
    const core = new IssuerCore({ ...cfg, algorithms: [alg] }, { issuerUrl: () => 'https://ci.example.com', instanceUrl: () => 'https://ci.example.com' }, keyring, () => Math.floor(Date.now() / 1000));
    const active = keyring.signer(alg)!;
    const sample = core.mintForJob(context, 'https://vault.example.com').token;
    if (JSON.parse(Buffer.from(sample.split('.')[0]!, 'base64url').toString()).alg !== alg) throw new Error(`bench minted the wrong algorithm for ${alg}`);
    const input = Buffer.from(sample.slice(0, sample.lastIndexOf('.')), 'latin1');
    // The same private key the signer holds, signing a token-sized input: the raw floor.
    const der = kek.open(rowsStore.find((r) => r.kid === active.signer.kid)!.sealedPrivateKey, sealAad(active.signer.kid));
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    const hash = alg === 'EdDSA' ? null : 'sha256';
    const keyInput = alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key;
    const batch = alg === 'RS256' ? 4 : 20;
    // Paired measurement: alternate small batches of both and accumulate each one's time, so load
    // drift on the shared machine hits both sides alike. A warm-up runs first.
    const seconds = h.quick ? 0.6 : 4;
    const rawFn = () => cryptoSign(hash, input, keyInput);
    const oursFn = () => core.mintForJob(context, 'https://vault.example.com');
    for (let i = 0; i < batch * 4; i++) {
      rawFn();
      oursFn();
    }
    let rawTime = 0;
    let oursTime = 0;
    let n = 0;
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) rawFn();
      const t1 = performance.now();
      for (let i = 0; i < batch; i++) oursFn();
      const t2 = performance.now();
      rawTime += t1 - t0;
      oursTime += t2 - t1;
      n += batch;
    }
    const raw = { name: `raw crypto.sign ${alg}`, opsPerSec: n / (rawTime / 1000), iterations: n };
    const ours = { name: `mint ${alg}`, opsPerSec: n / (oursTime / 1000), iterations: n };
    rows.push({ label: `ID tokens minted/s, ${alg} (full claim set, ${String(sample.length)}-char token)`, ours, baseline: raw, note: 'target >= 85% of raw; paired, alternating batches' });
  }
  h.report('Issuer: minting', rows);
}
