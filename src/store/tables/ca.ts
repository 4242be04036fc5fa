/** Tables owned by src/ca/. */
export interface CaTables {}
