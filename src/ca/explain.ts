import { isVerificationError } from '../verifier/errors.ts';
import type { CaAuthenticator } from './authenticate.ts';
import { AuthenticationError } from './authenticate.ts';
import { IdentityError, type TemplateTraceEntry } from './identity.ts';
import type { CaService } from './service.ts';
import { FulcioError } from './service.ts';

/**
 * `ci-oidc ca explain --token T` (signing-ca.md §12, sigstore/fulcio#2334): which issuer entry matched,
 * what verification said, and each template's value or error. Never includes the token itself.
 */
export interface ExplainReport {
  iss?: string;
  issuerMatch: { kind: 'exact' | 'meta' | 'none'; entry?: string; type?: string; ciProvider?: string; challengeClaim?: string };
  verification: { ok: boolean; code?: string; detail?: string; registration?: string; kid?: string; alg?: string };
  templates: TemplateTraceEntry[];
  /** What the CA would answer: ok, or the Fulcio message. */
  outcome: { ok: boolean; message?: string; code?: string };
}

export async function explainToken(service: CaService, authenticator: CaAuthenticator, token: string): Promise<ExplainReport> {
  const report: ExplainReport = { issuerMatch: { kind: 'none' }, verification: { ok: false }, templates: [], outcome: { ok: false } };
  let match;
  try {
    match = authenticator.match(token);
  } catch (err) {
    const code = err instanceof AuthenticationError ? err.code : 'token_malformed';
    report.verification = { ok: false, code, detail: err instanceof Error ? err.message : String(err) };
    report.outcome = { ok: false, code, message: 'There was an error processing the identity token' };
    return report;
  }
  report.iss = match.iss;
  if (match.issuer) {
    const i = match.issuer;
    report.issuerMatch = {
      kind: i.wildcardIssuerUrl ? 'meta' : 'exact',
      entry: i.issuerUrl ?? i.wildcardIssuerUrl!,
      type: i.type,
      ...(i.ciProvider ? { ciProvider: i.ciProvider } : {}),
      challengeClaim: i.challengeClaim,
    };
  }
  let auth;
  try {
    auth = await service.authenticate(token);
  } catch (err) {
    if (err instanceof FulcioError) {
      report.verification = { ok: false, code: err.code, ...(err.detail ? { detail: err.detail } : {}) };
      report.outcome = { ok: false, code: err.code, message: err.clientMessage };
      return report;
    }
    const code = isVerificationError(err) ? err.code : 'internal_error';
    report.verification = { ok: false, code };
    report.outcome = { ok: false, code, message: 'There was an error processing the identity token' };
    return report;
  }
  report.verification = { ok: true, registration: auth.token.registration.id, ...(auth.token.kid ? { kid: auth.token.kid } : {}), alg: auth.token.alg };
  try {
    service.identityFor(auth, report.templates);
    report.outcome = { ok: true };
  } catch (err) {
    if (err instanceof IdentityError) report.outcome = { ok: false, code: err.code, message: err.clientMessage };
    else if (err instanceof FulcioError) report.outcome = { ok: false, code: err.code, message: err.clientMessage };
    else throw err;
  }
  return report;
}
