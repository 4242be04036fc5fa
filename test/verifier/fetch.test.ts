import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { checkFetchUrl, classifyAddress, createHardenedFetcher, FetchError } from '../../src/jose/fetch.ts';
import { startServer, tableResolver, type TestServer } from './helpers.ts';
import { startTlsServer, type TlsServer } from './tls.ts';

async function fetchCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof FetchError) return err.code;
    throw err;
  }
}

describe('address classification (V§8 ranges)', () => {
  test('blocked and public addresses', () => {
    const blocked = [
      '10.0.0.1', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '192.0.0.1', '192.0.2.1', '192.88.99.1', '198.18.0.1',
      '198.51.100.1', '203.0.113.1', '224.0.0.1', '240.0.0.1', '255.255.255.255', '::', 'fc00::1', 'fd12::1', 'fe80::1', 'ff02::1', '2001:db8::1',
      '100::1', '2001::1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '64:ff9b::a00:1', '64:ff9b:1:a00:1::', '2002:a00:1::', 'not-an-ip',
    ];
    for (const a of blocked) assert.equal(classifyAddress(a), 'blocked', a);
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(classifyAddress(a), 'loopback', a);
    for (const a of ['8.8.8.8', '140.82.112.3', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::']) assert.equal(classifyAddress(a), 'public', a);
  });

  test('E1 literals: WHATWG forms of 127.0.0.1 and mapped IPv6 are refused before any I/O', () => {
    for (const url of ['https://2130706433/', 'https://0x7f.1/', 'https://017700000001/', 'https://[::ffff:127.0.0.1]/', 'https://[::1]/', 'https://10.0.0.1/', 'https://169.254.169.254/latest/meta-data']) {
      assert.throws(() => checkFetchUrl(url, false), (e: FetchError) => e.code === 'fetch_address_blocked', url);
    }
    for (const url of ['http://2130706433/', 'http://example.com/', 'ftp://example.com/', 'https://u:p@example.com/', 'https://example.com/#x', 'https://example.com/#']) {
      assert.throws(() => checkFetchUrl(url, false), (e: FetchError) => e.code === 'fetch_url_invalid', url);
    }
    assert.equal(checkFetchUrl('http://127.0.0.1:1/x', true).hostname, '127.0.0.1');
    assert.throws(() => checkFetchUrl('http://10.0.0.1/', true), (e: FetchError) => e.code === 'fetch_address_blocked');
  });
});

describe('hardened fetcher against loopback servers', () => {
  let tls: TlsServer;
  let plain: TestServer;
  before(async () => {
    tls = await startTlsServer();
    plain = await startServer();
  });
  after(async () => {
    await tls.close();
    await plain.close();
  });

  test('https to a checked name: SNI/Host = the name, connection to the validated address, fixed request hygiene (E2, E8)', async () => {
    tls.json('/jwks', { keys: [] }, { 'cache-control': 'public, max-age=86400, must-revalidate' });
    const resolver = tableResolver({ 'jwks.test': '127.0.0.1' });
    const prevProxy = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = 'http://127.0.0.1:9';
    const f = createHardenedFetcher({ resolver, allowLoopback: true });
    try {
      const r = await f.fetchJson(`https://jwks.test:${tls.port}/jwks`, { caCertPem: tls.ca });
      assert.deepEqual(r.body, { keys: [] });
      assert.equal(r.maxAge, 86400);
      assert.equal(resolver.calls.get('jwks.test'), 1, 'resolved once');
      const h = tls.lastHeaders ?? {};
      assert.equal(h.host, `jwks.test:${tls.port}`);
      assert.equal(h['user-agent'], 'ci-oidc/0.1');
      assert.equal(h.accept, 'application/json');
      assert.equal(h['accept-encoding'], 'identity');
      assert.equal(h.cookie, undefined);
      assert.equal(h.authorization, undefined);
      assert.equal(h['proxy-authorization'], undefined);
    } finally {
      if (prevProxy === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = prevProxy;
      await f.close();
    }
  });

  test('without the per-registration CA the self-signed server is refused', async () => {
    const f = createHardenedFetcher({ resolver: tableResolver({ 'jwks.test': '127.0.0.1' }), allowLoopback: true });
    assert.equal(await fetchCode(f.fetchJson(`https://jwks.test:${tls.port}/jwks`)), 'fetch_failed');
    await f.close();
  });

  test('E1: names resolving to private ranges are refused before connect; loopback only with the test flag', async () => {
    const before = tls.connections;
    const table: Record<string, string | string[]> = {
      lo: '127.0.0.1', ten: '10.0.0.1', one72: '172.16.0.1', one92: '192.168.1.1', meta: '169.254.169.254', cgn: '100.64.0.1', zero: '0.0.0.0',
      v6lo: '::1', ula: 'fc00::1', ll: 'fe80::1', mapped: '::ffff:10.0.0.1', nat64: '64:ff9b::a00:1', mixed: ['127.0.0.1', '10.0.0.1'],
    };
    const strict = createHardenedFetcher({ resolver: tableResolver(table) });
    const loose = createHardenedFetcher({ resolver: tableResolver(table), allowLoopback: true });
    for (const name of Object.keys(table)) {
      assert.equal(await fetchCode(strict.fetchJson(`https://${name}:${tls.port}/jwks`, { caCertPem: tls.ca })), 'fetch_address_blocked', name);
      if (name !== 'lo' && name !== 'v6lo') assert.equal(await fetchCode(loose.fetchJson(`https://${name}:${tls.port}/jwks`, { caCertPem: tls.ca })), 'fetch_address_blocked', name);
    }
    assert.equal(tls.connections, before, 'the server saw no connection');
    // Plain http needs the test flag and a loopback answer.
    assert.equal(await fetchCode(strict.fetchJson(`${plain.url}/x`)), 'fetch_url_invalid');
    assert.equal(plain.connections, 0);
    await strict.close();
    await loose.close();
  });

  test('E2: DNS answers change after validation — a fresh connection re-validates, a bad answer never connects', async () => {
    const answers = ['127.0.0.1', '10.0.0.1'];
    let i = 0;
    const resolver = async () => [{ address: answers[Math.min(i++, 1)] as string, family: 4 as const }];
    tls.json('/rebind', { ok: true });
    const f1 = createHardenedFetcher({ resolver, allowLoopback: true });
    assert.equal(await fetchCode(f1.fetchJson(`https://jwks.test:${tls.port}/rebind`, { caCertPem: tls.ca })), 'ok');
    await f1.close();
    const f2 = createHardenedFetcher({ resolver, allowLoopback: true });
    const before = tls.connections;
    assert.equal(await fetchCode(f2.fetchJson(`https://jwks.test:${tls.port}/rebind`, { caCertPem: tls.ca })), 'fetch_address_blocked');
    assert.equal(tls.connections, before);
    await f2.close();
  });

  test('E3/B3: cross-origin, downgrade and long redirect chains are refused; short same-origin chains followed', async () => {
    const f = createHardenedFetcher({ resolver: tableResolver({ 'jwks.test': '127.0.0.1', 'other.test': '127.0.0.1' }), allowLoopback: true });
    const base = `https://jwks.test:${tls.port}`;
    const redirect = (to: string, status = 302) => (_req: unknown, res: import('node:http').ServerResponse) => {
      res.writeHead(status, { location: to });
      res.end();
    };
    tls.json('/final', { keys: [] });
    tls.route('/cross', redirect(`https://other.test:${tls.port}/final`, 301));
    tls.route('/down', redirect(`http://jwks.test:${plain.port}/final`));
    tls.route('/private', redirect('https://10.0.0.1/final'));
    tls.route('/h1', redirect('/h2'));
    tls.route('/h2', redirect('/final'));
    for (let n = 0; n < 5; n++) tls.route(`/loop${n}`, redirect(`/loop${n + 1}`));
    tls.route('/loop5', redirect('/final'));
    const opts = { caCertPem: tls.ca };
    const finalBefore = tls.hits.get('/final') ?? 0;
    assert.equal(await fetchCode(f.fetchJson(`${base}/cross`, opts)), 'fetch_redirect_refused');
    assert.equal(await fetchCode(f.fetchJson(`${base}/down`, opts)), 'fetch_redirect_refused');
    assert.equal(await fetchCode(f.fetchJson(`${base}/private`, opts)), 'fetch_redirect_refused');
    assert.equal(await fetchCode(f.fetchJson(`${base}/loop0`, opts)), 'fetch_redirect_refused');
    assert.equal(tls.hits.get('/final') ?? 0, finalBefore, 'no refused redirect was followed');
    assert.equal((await f.fetchJson(`${base}/h1`, opts)).url, `${base}/final`);
    await f.close();
  });

  test('E5: big, endless, slow and compressed-bomb bodies are cut off', async () => {
    // Size limits with the default 5 s deadline (so a loaded machine never turns them into timeouts);
    // the deadline itself with a short one.
    const f = createHardenedFetcher({ resolver: tableResolver({ 'jwks.test': '127.0.0.1' }), allowLoopback: true });
    const quick = createHardenedFetcher({ resolver: tableResolver({ 'jwks.test': '127.0.0.1' }), allowLoopback: true, timeoutMs: 400 });
    const base = `https://jwks.test:${tls.port}`;
    const opts = { caCertPem: tls.ca };
    tls.route('/big', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(50 * 1024 * 1024) });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 50 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        if (sent < 50 * 1024 * 1024) res.once('drain', pump);
      };
      res.on('error', () => undefined);
      pump();
    });
    tls.route('/endless', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024, 0x20)), 1);
      res.on('close', () => clearInterval(timer));
    });
    tls.route('/slow', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
      const timer = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(timer));
    });
    tls.route('/hang', () => undefined);
    tls.route('/bomb', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20)));
    });
    tls.route('/gz', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(JSON.stringify({ keys: [] })));
    });
    assert.equal(await fetchCode(f.fetchJson(`${base}/big`, opts)), 'fetch_too_large');
    assert.equal(await fetchCode(f.fetchJson(`${base}/endless`, opts)), 'fetch_too_large');
    assert.equal(await fetchCode(quick.fetchJson(`${base}/slow`, opts)), 'fetch_timeout');
    assert.equal(await fetchCode(quick.fetchJson(`${base}/hang`, opts)), 'fetch_timeout');
    assert.equal(await fetchCode(f.fetchJson(`${base}/bomb`, opts)), 'fetch_too_large');
    assert.deepEqual((await f.fetchJson(`${base}/gz`, opts)).body, { keys: [] });
    await f.close();
    await quick.close();
  });

  test('E6: html, non-200, duplicate members, 10k keys and non-objects are refused', async () => {
    const f = createHardenedFetcher({ resolver: tableResolver({ 'jwks.test': '127.0.0.1' }), allowLoopback: true });
    const base = `https://jwks.test:${tls.port}`;
    const opts = { caCertPem: tls.ca };
    tls.route('/html', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('{"keys":[]}');
    });
    tls.route('/500', (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<html>oops</html>');
    });
    tls.json('/dup', '{"keys":[],"keys":[{"kty":"RSA"}]}');
    tls.json('/many', JSON.stringify(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, 1]))));
    tls.json('/array', '[]');
    tls.json('/bad', '{"keys":');
    tls.json('/deep', `${'['.repeat(50)}${']'.repeat(50)}`);
    assert.equal(await fetchCode(f.fetchJson(`${base}/html`, opts)), 'fetch_content_invalid');
    assert.equal(await fetchCode(f.fetchJson(`${base}/500`, opts)), 'fetch_status');
    assert.equal(await fetchCode(f.fetchJson(`${base}/dup`, opts)), 'fetch_content_invalid');
    assert.notEqual(await fetchCode(f.fetchJson(`${base}/many`, opts)), 'ok');
    for (const p of ['/array', '/bad', '/deep']) assert.equal(await fetchCode(f.fetchJson(`${base}${p}`, opts)), 'fetch_content_invalid', p);
    await f.close();
  });

  test('E7: at most maxConcurrent requests in flight', async () => {
    let inflight = 0;
    let peak = 0;
    tls.route('/gate', (_req, res) => {
      inflight++;
      peak = Math.max(peak, inflight);
      setTimeout(() => {
        inflight--;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      }, 20);
    });
    const f = createHardenedFetcher({ resolver: tableResolver({ 'jwks.test': '127.0.0.1' }), allowLoopback: true, maxConcurrent: 2 });
    await Promise.all(Array.from({ length: 8 }, () => f.fetchJson(`https://jwks.test:${tls.port}/gate`, { caCertPem: tls.ca })));
    assert.ok(peak <= 2, `peak ${peak}`);
    await f.close();
  });

  test('plain http works only to loopback with the test flag', async () => {
    plain.json('/ok', { a: 1 });
    const f = createHardenedFetcher({ resolver: tableResolver({ 'lo.test': '127.0.0.1', 'pub.test': '8.8.8.8' }), allowLoopback: true });
    assert.deepEqual((await f.fetchJson(`${plain.url}/ok`)).body, { a: 1 });
    assert.deepEqual((await f.fetchJson(`http://lo.test:${plain.port}/ok`)).body, { a: 1 });
    assert.equal(await fetchCode(f.fetchJson(`http://pub.test:${plain.port}/ok`)), 'fetch_address_blocked');
    await f.close();
  });
});
