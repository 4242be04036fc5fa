import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { createVerifier } from '../../src/verifier/verifier.ts';
import { splitCompactJws, decodePayloadSegment } from '../../src/jose/compact.ts';
const alg = (process.argv[2] ?? 'RS256') as 'RS256' | 'ES256' | 'EdDSA';
const pair = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
const now = Math.floor(Date.now()/1000);
const claims = { namespace_id: '123', namespace_path: 'foo', project_id: '55235664', project_path: 'foo/bar', user_id: '123', user_login: 'user', user_email: 'user@example.com', user_access_level: 'owner', pipeline_id: '123', pipeline_source: 'push', job_id: '123', ref: 'main', ref_type: 'branch', ref_path: 'refs/heads/main', ref_protected: 'true', runner_id: 123, runner_environment: 'gitlab-hosted', sha: '93969f556a29853b507bdcd9dec6b4217a4ea2e7', project_visibility: 'private', ci_config_ref_uri: 'gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main', ci_config_sha: '93969f556a29853b507bdcd9dec6b4217a4ea2e7', jti: '2a5381a8-baf5-43c5-823d-544a08a067fb', iat: now, nbf: now - 5, exp: now + 3600, iss: 'https://gitlab.com', sub: 'project_path:foo/bar:ref_type:branch:ref:main', aud: 'ours' };
const input = `${Buffer.from(JSON.stringify({kid:'k1',typ:'JWT',alg})).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
const skey: any = alg === 'ES256' ? { key: pair.privateKey, dsaEncoding: 'ieee-p1363' } : pair.privateKey;
const hash = alg === 'EdDSA' ? null : 'sha256';
const token = `${input}.${sign(hash, Buffer.from(input), skey).toString('base64url')}`;
const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid: 'k1', alg, use: 'sig' };
const v = createVerifier({ issuers: [{ id: 'g', issuer: 'https://gitlab.com', profile: 'gitlab', algorithms: [alg], keys: { staticJwks: { keys: [jwk] } } }] });
const e = { audiences: ['ours'] };
await v.verify(token, e);
const vkey: any = alg === 'ES256' ? { key: pair.publicKey, dsaEncoding: 'ieee-p1363' } : pair.publicKey;
const dot = token.lastIndexOf('.'); const si = Buffer.from(token.slice(0, dot)); const sg = Buffer.from(token.slice(dot+1), 'base64url');
let tr = 0, to = 0, tp = 0; const N = 500;
const parts = splitCompactJws(token);
for (let round = 0; round < 12; round++) {
  let s = performance.now(); for (let i = 0; i < N; i++) verify(hash, si, vkey, sg); tr += performance.now() - s;
  s = performance.now(); for (let i = 0; i < N; i++) await v.verify(token, e); to += performance.now() - s;
  s = performance.now(); for (let i = 0; i < N; i++) { splitCompactJws(token); decodePayloadSegment(parts.payloadSegment); } tp += performance.now() - s;
}
const n = 12 * N;
console.log(alg, 'raw', (tr*1000/n).toFixed(1), 'us; ours', (to*1000/n).toFixed(1), 'us; parse only', (tp*1000/n).toFixed(1), 'us; ratio', (tr/to*100).toFixed(0)+'%');
