/** Tables owned by src/policy/. */
export interface PolicyTables {}
