/** Public API of the policy engine. The broker imports from here only. */
export type * from './types.ts';
export { createPolicyEngine, type PolicyEngineOptions } from './engine.ts';
export { compileRole, compareSpecificity, type CompiledRole } from './role.ts';
export { evaluateCandidate, selectRole, audienceAccepted, type LoadedRole } from './decide.ts';
export { PolicyValidationError } from './predicate.ts';
export { compileGlob, type GlobDialect } from './glob.ts';
export { compileRegex } from './regex.ts';
export { compileCel } from './cel.ts';
export { policyProfile, type PolicyProfile, type ClaimKind } from './profile.ts';
export { instanceHost, publisherProviderFor } from './publishers.ts';
export { importPolicy, type ImportDialect, type ImportResult } from './importers/index.ts';
