import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { walkthroughScript } from '../../src/cli/commands/demo.ts';

/**
 * The README's walkthrough, run verbatim against `npm start` in a scratch copy of the checkout (links to
 * the real files). Port 8080 is used when free; otherwise the same commands run with another port.
 */
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
const block = /<!-- walkthrough:start -->\n```bash\n([\s\S]*?)\n```\n<!-- walkthrough:end -->/.exec(readme)?.[1];

let work: string;
let server: ChildProcess;
let port = 8080;
let banner = '';

async function portFree(p: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen(p, '127.0.0.1', () => probe.close(() => done(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address() as { port: number };
      probe.close(() => done(p));
    });
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'ci-oidc-walkthrough-'));
  for (const name of ['package.json', 'node_modules', 'bin', 'src', 'examples']) symlinkSync(join(repo, name), join(work, name));
  if (!(await portFree(8080))) port = await freePort();
  const args = ['start', ...(port === 8080 ? [] : ['--', '--port', String(port)])];
  // Its own process group: npm does not pass SIGTERM on to the server, so the group is signalled.
  server = spawn('npm', args, { cwd: work, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`npm start did not print the walkthrough:\n${banner}`)), 90_000);
    const onData = (chunk: Buffer) => {
      banner += chunk.toString();
      if (banner.includes('Stop with Ctrl-C')) {
        clearTimeout(timer);
        ready();
      }
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', (c: Buffer) => (banner += c.toString()));
    server.once('exit', (code) => fail(new Error(`npm start exited (${code}):\n${banner}`)));
  });
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    process.kill(-server.pid!, 'SIGTERM');
    await exited;
  }
});

test('the README walkthrough is the one the demo prints', () => {
  assert.ok(block, 'README has a walkthrough block between the markers');
  assert.equal(block, walkthroughScript('http://127.0.0.1:8080', './data'));
  for (const line of walkthroughScript(`http://127.0.0.1:${port}`, './data').split('\n')) {
    if (line.trim()) assert.ok(banner.includes(line.trim()), `npm start printed: ${line}`);
  }
});

test('every walkthrough command works as printed', async () => {
  const script = block!.replaceAll('http://127.0.0.1:8080', `http://127.0.0.1:${port}`);
  const result = await new Promise<{ code: number; out: string }>((done) => {
    execFile('bash', ['-e', '-c', script], { cwd: work, env: { ...process.env, NO_COLOR: '1' }, timeout: 240_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}\n${stderr}` });
    });
  });
  assert.equal(result.code, 0, result.out);
  const credentials = result.out.match(/^cioidc_[A-Za-z0-9_-]+$/gm) ?? [];
  assert.equal(credentials.length, 2, `two credentials printed (PyPI and role):\n${result.out}`);
  assert.match(result.out, /signed data\/demo\/artifact\.txt as /);
  assert.match(result.out, /Verified OK/);
  assert.match(result.out, /ALLOW .*demo-deploy/);
});
