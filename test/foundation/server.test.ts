import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../src/server/logger.ts';
import { buildServer } from '../../src/server/app.ts';
import { parseConfig } from '../../src/server/config.ts';
import { kekFromBytes } from '../../src/jose/kek.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

let store: TestStore;
let server: TestServer;

before(async () => {
  store = await openTestStore('sqlite');
  server = await startTestServer({ store });
});
after(async () => {
  await server.close();
  await store.close();
});

test('healthz answers ok', async () => {
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

test('readyz checks the store and every module', async () => {
  const res = await fetch(`${server.url}/readyz`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { status: string; checks: Record<string, string> };
  assert.equal(body.status, 'ready');
  assert.equal(body.checks.store, 'ok');
});

test('metrics are Prometheus text and count requests by route template', async () => {
  await fetch(`${server.url}/healthz`);
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  assert.match(text, /ci_oidc_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
  assert.match(text, /ci_oidc_http_request_duration_seconds_bucket/);
});

test('unknown routes get a JSON 404 with a stable code', async () => {
  const res = await fetch(`${server.url}/no/such/route?token=x`);
  assert.equal(res.status, 404);
  const body = (await res.json()) as { error: string; message: string };
  assert.equal(body.error, 'not_found');
  assert.doesNotMatch(body.message, /token=x/);
});

test('oversized bodies are refused with 413, not buffered', async () => {
  const res = await fetch(`${server.url}/healthz`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pad: 'x'.repeat(70 * 1024) }),
  });
  assert.ok(res.status === 413 || res.status === 404, `status ${res.status}`);
});

test('a token in a query string never reaches the logs (request log lines carry the path only)', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const own = await openTestStore('sqlite');
  const server = await buildServer({
    config: parseConfig({ server: { host: '127.0.0.1', port: 0 }, broker: { sts: { enabled: true } } }),
    store: own,
    logger: createLogger({ level: 'debug', destination }),
    kek: kekFromBytes(randomBytes(32)),
  });
  const url = await server.listen();
  try {
    const secret = 'eyJhbGciOiJSUzI1NiJ9.SECRET-IN-QUERY.sig';
    assert.equal((await fetch(`${url}/_/oidc/audience?token=${secret}`)).status, 200);
    const sts = await fetch(`${url}/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken=${secret}`);
    assert.equal(sts.status, 405, 'STS over GET is refused: the token would be in the URL');
    assert.match(await sts.text(), /<Code>InvalidAction<\/Code>/);
    assert.equal((await fetch(`${url}/no/such/route?jwt=${secret}`)).status, 404);
  } finally {
    await server.close();
    await own.close();
  }
  assert.ok(lines.some((l) => l.includes('?[query redacted]')), 'request lines are still logged');
  assert.deepEqual(lines.filter((l) => l.includes('SECRET-IN-QUERY')), []);
});
