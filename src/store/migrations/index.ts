import type { MigrationModule } from '../migrate.ts';
import * as m001 from './001_foundation.ts';
import * as m002 from './002_issuer.ts';
import * as m003 from './003_verifier.ts';
import * as m004 from './004_policy.ts';
import * as m005 from './005_broker.ts';
import * as m006 from './006_ca.ts';
import * as m007 from './007_verifier_issuers.ts';

/** Applied in key order. A released migration is never edited: add a new one. */
export const migrations: Record<string, MigrationModule> = {
  '001_foundation': m001,
  '002_issuer': m002,
  '003_verifier': m003,
  '004_policy': m004,
  '005_broker': m005,
  '006_ca': m006,
  '007_verifier_issuers': m007,
};
