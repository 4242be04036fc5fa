import type { FoundationTables } from './tables/foundation.ts';
import type { IssuerTables } from './tables/issuer.ts';
import type { VerifierTables } from './tables/verifier.ts';
import type { PolicyTables } from './tables/policy.ts';
import type { BrokerTables } from './tables/broker.ts';
import type { CaTables } from './tables/ca.ts';

/** Every table in the store; each capability declares its own in `tables/<capability>.ts`. */
export type Database = FoundationTables & IssuerTables & VerifierTables & PolicyTables & BrokerTables & CaTables;
