import { GITHUB_CLAIM_TYPES } from '../providers/github.ts';

/**
 * GitHub Actions claim names (issuer.md §8.2). Custom claims may never use them, so a ci-oidc token
 * can never pose as carrying GitHub facts.
 */
export const GITHUB_CLAIM_NAMES_FOR_RESERVATION: readonly string[] = Object.keys(GITHUB_CLAIM_TYPES);
