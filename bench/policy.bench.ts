import { randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/db.ts';
import { createPolicyEngine } from '../src/policy/engine.ts';
import { compileRole } from '../src/policy/role.ts';
import { selectRole, type LoadedRole } from '../src/policy/decide.ts';
import type { PolicyRegistration } from '../src/policy/types.ts';
import type { BenchHarness } from './harness.ts';

/**
 * Policy decisions per second on one core against 1,000 roles and 10,000 trusted publishers held in
 * the store (SQLite), served from the engine's in-memory index (lookup by registration and project
 * path). Baselines from the same run: evaluating every role (a scan) and the store's own indexed SQL
 * lookup of the publisher row. Target: >= 100,000 decisions/s.
 */

const ROLES = 1_000;
const PUBLISHERS = 10_000;
const GITLAB: PolicyRegistration = { id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab', shared: true };

function claims(i: number): Record<string, unknown> {
  const ns = `grp${i}`;
  const path = `${ns}/proj${i}`;
  return {
    namespace_id: String(1000 + i), namespace_path: ns, project_id: String(500000 + i), project_path: path, user_id: '1', user_login: 'u',
    pipeline_id: '1', pipeline_source: 'push', job_id: '1', ref: 'main', ref_type: 'branch', ref_path: 'refs/heads/main', ref_protected: 'true',
    runner_id: 1, runner_environment: 'gitlab-hosted', sha: '93969f556a29853b507bdcd9dec6b4217a4ea2e7', project_visibility: 'private',
    ci_config_ref_uri: `gitlab.com/${path}//.gitlab-ci.yml@refs/heads/main`, jti: randomUUID(), iat: 1, nbf: 1, exp: 2, iss: 'https://gitlab.com',
    sub: `project_path:${path}:ref_type:branch:ref:main`, aud: 'https://broker.example.com',
  };
}

function roleDoc(i: number) {
  return {
    name: `deploy-${i}`,
    issuer: 'gitlab.com',
    audiences: ['https://broker.example.com'],
    when: { all: [{ claim: 'project_path', eq: `grp${i}/proj${i}` }, { claim: 'ref_protected', eq: true }, { claim: 'ref', glob: ['main', 'release/*'] }] },
    grant: { type: 'oauth', scopes: ['deploy'], maxTtl: 900 },
  };
}

/** Decisions per CPU-second (user + system time of this process): robust on a shared, loaded machine. */
async function perCpuSecond(n: number, fn: () => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const used = process.cpuUsage(before);
  return n / ((used.user + used.system) / 1e6);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export default async function (h: BenchHarness): Promise<void> {
  const file = join(tmpdir(), `ci-oidc-policy-bench-${randomBytes(4).toString('hex')}.db`);
  const store = await openStore({ url: `sqlite:${file}` });
  try {
    const now = 1_750_000_000;
    // Fixture rows go straight to the tables (the engine's CRUD writes an audit row each).
    const roleRows = Array.from({ length: ROLES }, (_, i) => ({
      id: randomUUID(), tenant: 'default', name: `deploy-${i}`, registration: 'gitlab.com', document: JSON.stringify(roleDoc(i)),
      pin_owner_id: String(1000 + i), pin_project_id: String(500000 + i), created_at: now, updated_at: now,
    }));
    for (let i = 0; i < roleRows.length; i += 200) await store.db.insertInto('policy_roles').values(roleRows.slice(i, i + 200)).execute();
    const pubRows = Array.from({ length: PUBLISHERS }, (_, i) => ({
      id: randomUUID(), tenant: 'default', provider: 'gitlab', registration: 'gitlab.com', owner: `grp${i}`, owner_lc: `grp${i}`, project: `proj${i}`, project_lc: `proj${i}`,
      workflow: '.gitlab-ci.yml', environment: '', constraints: '{}', pin_owner_id: String(1000 + i), pin_project_id: String(500000 + i), projects: JSON.stringify([`pkg${i}`]),
      first_use_deadline: null, created_at: now,
    }));
    for (let i = 0; i < pubRows.length; i += 200) await store.db.insertInto('policy_publishers').values(pubRows.slice(i, i + 200)).execute();

    const engine = await createPolicyEngine({ store, registrations: [GITLAB], clock: () => now, maxStaleSeconds: 3600 });
    const tokens = Array.from({ length: 997 }, (_, k) => ({ registrationId: 'gitlab.com', claims: claims((k * 7919) % ROLES) }));
    let t = 0;
    const next = () => tokens[t++ % tokens.length]!;

    // Sanity: every measured decision must allow.
    for (const tok of tokens.slice(0, 20)) {
      const [r, p] = await Promise.all([engine.decideRole(tok, { recordPins: false }), engine.decidePublisher(tok, { recordPins: false })]);
      if (r.decision !== 'allow' || p.decision !== 'allow') throw new Error(`bench fixture does not allow: ${r.reason} / ${p.reason}`);
    }

    const roleIndexed = await h.measureAsync('decideRole (indexed, unnamed)', () => engine.decideRole(next(), { recordPins: false }));
    const roleNamed = await h.measureAsync('decideRole (named)', () => {
      const tok = next();
      return engine.decideRole(tok, { roleName: `deploy-${String(tok.claims.project_path).slice(3).split('/')[0]}`, recordPins: false });
    });
    const loaded: LoadedRole[] = roleRows.map((r) => ({ id: r.id, tenant: 'default', compiled: compileRole(JSON.parse(r.document), GITLAB), pins: { owner: r.pin_owner_id, project: r.pin_project_id }, createdAt: now, updatedAt: now }));
    const roleScan = await h.measure('evaluate every role (scan)', () => selectRole({ registration: GITLAB, claims: next().claims, candidates: loaded, named: false, mode: 'single' }), { batch: 1 });
    const pubIndexed = await h.measureAsync('decidePublisher (indexed)', () => engine.decidePublisher(next(), { recordPins: false }));
    const pubSql = await h.measureAsync('store SQL lookup only (indexed)', () => {
      const c = next().claims;
      const [ns, proj] = String(c.project_path).split('/');
      return engine.repository.findPublishers('gitlab.com', ns!, proj!);
    });
    const n = h.quick ? 20_000 : 200_000;
    const cpuRole = await perCpuSecond(n, () => engine.decideRole(next(), { recordPins: false }));
    const cpuPub = await perCpuSecond(n, () => engine.decidePublisher(next(), { recordPins: false }));
    h.report('Policy decisions (1,000 roles, 10,000 publishers, one core)', [
      { label: 'role decision, unnamed (index by project path)', ours: roleIndexed, baseline: roleScan, note: `with explain trace; ${fmt(cpuRole)} per CPU-second; target >= 100,000/s` },
      { label: 'role decision, named', ours: roleNamed, baseline: roleScan, note: 'with explain trace' },
      { label: 'trusted-publisher decision', ours: pubIndexed, baseline: pubSql, note: `full PyPI checks + pins; ${fmt(cpuPub)} per CPU-second; baseline is only the SQL row lookup` },
    ]);
    await engine.close();
  } finally {
    await store.close();
    await Promise.all(['', '-wal', '-shm'].map((s) => rm(file + s, { force: true })));
  }
}
