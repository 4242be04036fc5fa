import bench from './bench/policy.bench.ts';
import { createHarness } from './bench/harness.ts';
const h = createHarness();
let phase = 0;
await bench({ ...h, quick: true, report: () => {}, measure: async (n: string) => ({ name: n, iterations: 1, opsPerSec: 1 }), measureAsync: async (n: string, fn: () => Promise<unknown>) => { if (phase++ === 0) { const u = process.cpuUsage(); for (let i = 0; i < 300000; i++) await fn(); const d = process.cpuUsage(u); console.log('role per cpu-s', Math.round(300000 / ((d.user + d.system) / 1e6))); } return { name: n, iterations: 1, opsPerSec: 1 }; } } as any);
