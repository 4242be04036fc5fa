import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import 'reflect-metadata';
import { createHarness, machineLine } from './harness.ts';

/**
 * `npm run bench [-- name…]` runs every bench/<name>.bench.ts (or the named ones) in one process, one
 * after another, and prints markdown tables ready for docs/benchmarks.md. BENCH_QUICK=1 shortens each run.
 */
const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.bench\.ts$/, '')))
  .sort();

console.log(`# ci-oidc benchmarks\n\nMachine: ${machineLine()}; ${new Date().toISOString()}`);
const harness = createHarness();
for (const file of files) {
  const mod = (await import(join(here, file))) as { default: (h: typeof harness) => Promise<void> };
  await mod.default(harness);
}
