import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
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
