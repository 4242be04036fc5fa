/**
 * A broker server in its own process for bench/broker.bench.ts (the load generator gets the other core):
 * store URL (sqlite:… or postgres://…, with BENCH_PG_SCHEMA) and the issuer JWKS come from the
 * environment; prints its URL, exits when stdin closes.
 */
import { openStore } from '../src/store/db.ts';
import { createVerifier } from '../src/verifier/verifier.ts';
import { realPolicy, startBroker } from '../test/broker/fixtures.ts';

const url = process.env.BENCH_STORE_URL!;
const store = await openStore({ url, pgSchema: process.env.BENCH_PG_SCHEMA, migrate: false, pgPoolSize: 10 });
const verifier = createVerifier({ issuers: [{ id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab', keys: { staticJwks: JSON.parse(process.env.BENCH_JWKS!) } }] });
const policy = await realPolicy(store, verifier);
const broker = await startBroker(store, { verifier, policy }, { broker: { rateLimit: { perClient: 1_000_000, perIssuer: 10_000_000 } } });
process.stdout.write(`${JSON.stringify({ url: broker.url })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void broker.close().then(() => store.close()).then(() => process.exit(0));
});
