import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import pg from 'pg';
import { mintSecret, newCredentialId } from '../src/broker/credential.ts';
import { insertCredential } from '../src/broker/credentials.ts';
import { openStore, type Store } from '../src/store/db.ts';
import { createVerifier } from '../src/verifier/verifier.ts';
import { createTestIssuer, realPolicy } from '../test/broker/fixtures.ts';
import type { BenchHarness } from './harness.ts';

/**
 * PyPI mint-token end to end over loopback (autocannon; the server runs in its own process), on SQLite
 * and PostgreSQL, beside the ceiling measured in the same run: one verify plus one credential mint
 * (secret, hash, and the credential row written to the same store). Target: >= 40% of the ceiling on SQLite.
 */
export default async function (h: BenchHarness): Promise<void> {
  const issuer = await createTestIssuer();
  const count = h.quick ? 1500 : 6000;
  // A fresh server process runs cold code: warm it until V8 has optimised the request path, as the
  // in-process ceiling is (after 100 requests it spent ~40% more CPU per request than after 3,000).
  const warmUp = h.quick ? 100 : 3000;
  const tokens: string[] = [];
  // Every token is single-use: enough for the warm-up and the run on each store.
  for (let i = 0; i < (count + warmUp) * 2 + 200; i++) tokens.push(issuer.mint({ exp: Math.floor(Date.now() / 1000) + 3600 }));
  // Bodies are serialised up front so the load generator spends its time on HTTP only.
  const bodies = tokens.map((token) => JSON.stringify({ token }));
  const verifier = createVerifier({ issuers: [{ id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab', keys: { staticJwks: issuer.jwks } }] });
  const pgUrl = process.env.CI_OIDC_TEST_PG_URL ?? process.env.BENCH_PG_URL;

  const rows = [];
  const targets: { kind: string; url: string; schema?: string; cleanup: () => Promise<void> }[] = [];
  const sqliteFile = `${process.env.TMPDIR ?? '/tmp'}/ci-oidc-bench-${randomBytes(4).toString('hex')}.db`;
  targets.push({ kind: 'SQLite', url: `sqlite:${sqliteFile}`, cleanup: async () => void (await Promise.all(['', '-wal', '-shm'].map((s) => rm(sqliteFile + s, { force: true })))) });
  if (pgUrl) {
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query(`create schema ${schema}`);
    await c.end();
    targets.push({
      kind: 'PostgreSQL',
      url: pgUrl,
      schema,
      cleanup: async () => {
        const d = new pg.Client({ connectionString: pgUrl });
        await d.connect();
        await d.query(`drop schema if exists ${schema} cascade`);
        await d.end();
      },
    });
  }

  let tokenIndex = 0;
  for (const t of targets) {
    const store: Store = await openStore({ url: t.url, pgSchema: t.schema });
    // Ceiling: one verify + one credential mint stored in this store, no HTTP. SQLite is synchronous, so
    // one at a time; PostgreSQL with as many in flight as the HTTP run has connections.
    const sample = tokens[0]!;
    // On SQLite the credential row goes through a prepared statement, the cheapest write there is (and
    // the one the broker's hot path uses); on PostgreSQL through kysely, as the broker does.
    const raw = t.kind === 'SQLite' ? new Database(sqliteFile) : undefined;
    const rawInsert = raw?.prepare(
      'INSERT INTO broker_credentials (id, token_hash, kind, endpoint, registration, iss, sub, subject_jti, role, scope, metadata, aws_access_key_id, issued_at, expires_at, revoked_at, revoked_reason) VALUES (@id, @token_hash, @kind, @endpoint, @registration, @iss, @sub, @subject_jti, @role, @scope, @metadata, @aws_access_key_id, @issued_at, @expires_at, @revoked_at, @revoked_reason)',
    );
    const ceilingOp = async () => {
      await verifier.verify(sample, { audiences: ['pypi'], audienceMode: 'strict-string' });
      const s = mintSecret();
      const now = Math.floor(Date.now() / 1000);
      const row = {
        id: newCredentialId(),
        token_hash: s.hash,
        kind: 'opaque',
        endpoint: 'pypi',
        registration: 'gitlab.com',
        iss: 'https://gitlab.com',
        sub: 'bench',
        subject_jti: null,
        role: 'bench',
        scope: '{}',
        metadata: '{}',
        aws_access_key_id: null,
        issued_at: now,
        expires_at: now + 900,
        revoked_at: null,
        revoked_reason: null,
      };
      if (rawInsert) rawInsert.run(row);
      else await insertCredential(store.db, row);
    };
    // The machine may be shared: measure the ceiling before and after the HTTP run and use the mean, so a
    // quiet or a busy moment does not bias the ratio.
    const ceilingOptions = { concurrency: t.kind === 'SQLite' ? 1 : 16, seconds: h.quick ? 0.3 : 3 };
    const ceilingBefore = await h.measureAsync(`verify + mint (${t.kind})`, ceilingOp, ceilingOptions);
    const policy = await realPolicy(store, verifier);
    await policy.createPublisher({ provider: 'gitlab', registration: 'gitlab.com', owner: 'mygroup', project: 'myproject', workflow: '.gitlab-ci.yml' }, { projects: ['sampleproject'] });
    await policy.close();

    const child = spawn(process.execPath, ['--import', 'tsx', new URL('./broker-server.ts', import.meta.url).pathname], {
      env: { ...process.env, BENCH_STORE_URL: t.url, BENCH_PG_SCHEMA: t.schema ?? '', BENCH_JWKS: JSON.stringify(issuer.jwks) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    const { url } = JSON.parse(line) as { url: string };
    // autocannon ends an `amount` run on its next 1 s sample tick and reports that as the duration, so
    // its own rate is 6000 / whole seconds; the rate here runs from the start to the last response.
    const run = (amount: number) =>
      new Promise<{ result: autocannon.Result; seconds: number }>((resolve, reject) => {
        const start = performance.now();
        let last = start;
        const instance = autocannon(
          {
            url,
            connections: 16,
            amount,
            requests: [
              {
                method: 'POST',
                path: '/_/oidc/mint-token',
                headers: { 'content-type': 'application/json' },
                setupRequest: (req) => ({ ...req, body: bodies[tokenIndex++ % bodies.length] }),
              },
            ],
          },
          (err, result) => (err ? reject(err) : resolve({ result, seconds: Math.max(last - start, 1) / 1000 })),
        );
        instance.on('response', () => {
          last = performance.now();
        });
      });
    await run(warmUp);
    const cpuBefore = processCpuMs(child.pid);
    const { result, seconds } = await run(count);
    const cpuAfter = processCpuMs(child.pid);
    const serverCpu = cpuBefore !== undefined && cpuAfter !== undefined ? `, server CPU ${Math.round(((cpuAfter - cpuBefore) * 1000) / count)} µs/request` : '';
    const ceilingAfter = await h.measureAsync(`verify + mint (${t.kind})`, ceilingOp, ceilingOptions);
    raw?.close();
    await store.close();
    const ceiling = {
      name: ceilingBefore.name,
      iterations: ceilingBefore.iterations + ceilingAfter.iterations,
      opsPerSec: (ceilingBefore.opsPerSec + ceilingAfter.opsPerSec) / 2,
    };
    child.stdin!.end();
    await once(child, 'exit');
    await t.cleanup();
    const e2e = { name: `mint-token over HTTP (${t.kind})`, iterations: result.requests.total, opsPerSec: result['2xx'] / seconds };
    rows.push({
      label: `PyPI mint-token, ${t.kind}`,
      ours: e2e,
      baseline: ceiling,
      note: `p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ${result['2xx']}/${result.requests.total} ok${serverCpu}${t.kind === 'SQLite' ? '; target >= 40% of the ceiling' : ''}`,
    });
  }
  await verifier.close();
  h.report('Broker: PyPI mint-token over loopback vs one verify + one credential mint', rows);
}

/** User + system CPU of a process in ms (all its threads), from /proc; undefined where there is none. */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime, in clock ticks (USER_HZ, 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}
