/**
 * One broker replica in its own process (spawned by replicas.test.ts): PostgreSQL schema and the test
 * issuer's JWKS come from the environment; it prints its URL and exits when stdin closes.
 */
import { openStore } from '../../src/store/db.ts';
import { createVerifier } from '../../src/verifier/verifier.ts';
import { realPolicy, startBroker } from './fixtures.ts';

const store = await openStore({ url: process.env.REPLICA_PG_URL!, pgSchema: process.env.REPLICA_PG_SCHEMA!, migrate: false, pgPoolSize: 10 });
const verifier = createVerifier({ issuers: [{ id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab', keys: { staticJwks: JSON.parse(process.env.REPLICA_JWKS!) } }] });
const policy = await realPolicy(store, verifier);
const broker = await startBroker(store, { verifier, policy }, { broker: { rateLimit: { perClient: 100000, perIssuer: 100000 } } });
process.stdout.write(`${JSON.stringify({ url: broker.url, pid: process.pid })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void broker.close().then(() => store.close()).then(() => process.exit(0));
});
