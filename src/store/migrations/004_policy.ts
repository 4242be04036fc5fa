import type { Kysely } from 'kysely';

/** Tables owned by src/policy/ (filled in by that capability). */
export async function up(_db: Kysely<any>): Promise<void> {}
