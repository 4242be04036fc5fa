import { cpus } from 'node:os';

export interface BenchResult {
  name: string;
  opsPerSec: number;
  iterations: number;
}

export interface BenchRow {
  /** What is measured, e.g. "mint RS256". */
  label: string;
  ours: BenchResult;
  /** The baseline measured in the same run, e.g. raw node:crypto signing. */
  baseline?: BenchResult;
  /** A short note, e.g. a target ("target >= 85%") or latency figures. */
  note?: string;
}

export interface BenchHarness {
  /** Runs `fn` repeatedly for about `seconds` (after a warm-up) and returns operations per second. */
  measure(name: string, fn: () => unknown, options?: { seconds?: number; batch?: number }): Promise<BenchResult>;
  /** The same for async functions, `concurrency` calls in flight. */
  measureAsync(name: string, fn: () => Promise<unknown>, options?: { seconds?: number; concurrency?: number }): Promise<BenchResult>;
  report(section: string, rows: BenchRow[]): void;
  readonly quick: boolean;
}

const QUICK = process.env.BENCH_QUICK === '1';

function defaultSeconds(): number {
  return QUICK ? 0.3 : 2;
}

export function createHarness(): BenchHarness {
  return {
    quick: QUICK,
    async measure(name, fn, options = {}) {
      const seconds = options.seconds ?? defaultSeconds();
      const batch = options.batch ?? 50;
      const warmEnd = performance.now() + Math.min(300, seconds * 250);
      while (performance.now() < warmEnd) for (let i = 0; i < batch; i++) fn();
      let iterations = 0;
      const start = performance.now();
      const end = start + seconds * 1000;
      let now = start;
      while (now < end) {
        for (let i = 0; i < batch; i++) fn();
        iterations += batch;
        now = performance.now();
      }
      return { name, iterations, opsPerSec: iterations / ((now - start) / 1000) };
    },
    async measureAsync(name, fn, options = {}) {
      const seconds = options.seconds ?? defaultSeconds();
      const concurrency = options.concurrency ?? 1;
      const run = async (until: number, count: { n: number }) => {
        const worker = async () => {
          while (performance.now() < until) {
            await fn();
            count.n++;
          }
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
      };
      await run(performance.now() + Math.min(300, seconds * 250), { n: 0 });
      const count = { n: 0 };
      const start = performance.now();
      await run(start + seconds * 1000, count);
      return { name, iterations: count.n, opsPerSec: count.n / ((performance.now() - start) / 1000) };
    },
    report(section, rows) {
      console.log(`\n## ${section}\n`);
      console.log('| measure | ours (ops/s) | baseline | baseline (ops/s) | ratio | note |');
      console.log('|---|---:|---|---:|---:|---|');
      for (const row of rows) {
        const ratio = row.baseline ? `${((row.ours.opsPerSec / row.baseline.opsPerSec) * 100).toFixed(0)}%` : '';
        console.log(
          `| ${row.label} | ${fmt(row.ours.opsPerSec)} | ${row.baseline?.name ?? ''} | ${row.baseline ? fmt(row.baseline.opsPerSec) : ''} | ${ratio} | ${row.note ?? ''} |`,
        );
      }
    },
  };
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${cpus().length} cores, Node ${process.version}, ${process.platform}/${process.arch}`;
}
