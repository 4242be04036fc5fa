/**
 * Pure role decisions (policy.md §1, §10): evaluate candidates, enforce pins, select the most
 * specific role, and build the explain output. No I/O: the engine supplies roles and records pins.
 */
import { compareSpecificity, type CompiledRole } from './role.ts';
import { parseSubPairs } from './pointer.ts';
import type { EvalContext } from './predicate.ts';
import type { AudienceMode, CandidateExplain, PolicyRegistration, ReasonCode, RoleDecision, RolePins, TokenSummary, TraceEntry } from './types.ts';

/** A role ready for evaluation: compiled document plus the pins in force. */
export interface LoadedRole {
  readonly id: string;
  readonly tenant: string;
  readonly compiled: CompiledRole;
  pins: { owner: string | null; project: string | null };
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface CandidateResult {
  role: LoadedRole;
  allowed: boolean;
  explain: CandidateExplain;
  /** Pins to record on allow (tofu). */
  toRecord: { owner?: string; project?: string };
}

export function tokenSummary(claims: Readonly<Record<string, unknown>>): TokenSummary {
  return { sub: claims.sub, aud: claims.aud, jti: claims.jti, exp: claims.exp };
}

/** Audience rule under the endpoint's mode (verification.md §7.2). */
export function audienceAccepted(aud: unknown, audiences: readonly string[], mode: AudienceMode): boolean {
  if (mode === 'strict-string') return typeof aud === 'string' && audiences.includes(aud);
  if (typeof aud === 'string') return audiences.includes(aud);
  if (!Array.isArray(aud) || aud.length === 0 || !aud.every((a) => typeof a === 'string')) return false;
  if (mode === 'single') return aud.length === 1 && audiences.includes(aud[0] as string);
  return aud.some((a) => audiences.includes(a as string));
}

export function pinsView(role: LoadedRole): RolePins {
  const p = role.compiled.profile.pins;
  if (!p) return {};
  const out: Record<string, string> = {};
  if (role.pins.owner) out[p.owner] = role.pins.owner;
  if (role.pins.project) out[p.project] = role.pins.project;
  return out as RolePins;
}

function reasonFromError(ctx: EvalContext): ReasonCode {
  return ctx.errorReason ?? 'claim-type';
}

export function evaluateCandidate(role: LoadedRole, claims: Readonly<Record<string, unknown>>, registration: PolicyRegistration, mode: AudienceMode, trace = true): CandidateResult {
  const c = role.compiled;
  const entries: TraceEntry[] = [];
  const ctx: EvalContext = { claims, profile: c.profile, shared: registration.shared, subEscaped: c.profile.subEscaped, ...(trace ? { trace: entries } : {}) };
  const base = { name: c.document.name, specificity: c.specificity, pins: pinsView(role), lints: c.lints, trace: entries };
  const deny = (reason: ReasonCode): CandidateResult => ({ role, allowed: false, explain: { ...base, result: 'deny', reason }, toRecord: {} });

  if (c.document.issuer !== registration.id) return deny('issuer-not-trusted');
  if (!audienceAccepted(claims.aud, c.document.audiences, mode)) {
    entries.push({ path: 'audiences', claim: 'aud', op: 'in', operand: c.document.audiences, actual: claims.aud, result: false, why: `audience not accepted (mode ${mode})` });
    return deny('audience-mismatch');
  }
  for (const d of c.deny) {
    const r = d.evaluate(ctx);
    if (r === true) return deny('deny-matched');
    if (r === 'error') return deny(reasonFromError(ctx));
  }
  const r = c.when.evaluate(ctx);
  if (r === 'error') return deny(reasonFromError(ctx));
  if (r === false) return deny('predicate-false');

  // ID pins (policy.md §8.2): a differing immutable ID denies even when every path matches.
  const toRecord: { owner?: string; project?: string } = {};
  const pinClaims = c.profile.pins;
  const pinning = c.document.pinning ?? 'tofu';
  if (pinClaims && pinning !== 'off') {
    const check = (need: boolean, pinned: string | null, claim: string, slot: 'owner' | 'project'): ReasonCode | null => {
      if (!need && pinned === null) return null;
      const v = claims[claim];
      if (typeof v !== 'string' || !/^[1-9][0-9]{0,19}$/.test(v)) {
        entries.push({ path: `pins.${claim}`, claim, op: 'eq', operand: pinned, actual: v, result: 'error', why: 'claim-missing or not an ID: the pin cannot be checked' });
        return 'id-mismatch';
      }
      if (pinned === null) {
        if (pinning === 'tofu') toRecord[slot] = v;
        entries.push({ path: `pins.${claim}`, claim, op: 'eq', operand: null, actual: v, result: true, why: pinning === 'tofu' ? 'not pinned yet: recorded on this first use' : 'explicit pin missing' });
        return pinning === 'explicit' ? 'id-mismatch' : null;
      }
      const ok = v === pinned;
      entries.push({ path: `pins.${claim}`, claim, op: 'eq', operand: pinned, actual: v, result: ok, why: ok ? 'pin matches' : 'id differs from the pin (resurrected or re-registered path?)' });
      return ok ? null : 'id-mismatch';
    };
    const e1 = check(c.pinRequirement.owner, role.pins.owner, pinClaims.owner, 'owner');
    if (e1) return deny(e1);
    const e2 = check(c.pinRequirement.project, role.pins.project, pinClaims.project, 'project');
    if (e2) return deny(e2);
  }
  return { role, allowed: true, explain: { ...base, result: 'allow', reason: 'allowed' }, toRecord };
}

/** `sub-format-changed` (policy.md §9): an exact-`sub` role whose pairs match the token's in another order. */
export function subFormatFlags(roles: readonly LoadedRole[], claims: Readonly<Record<string, unknown>>): string[] {
  const sub = claims.sub;
  if (typeof sub !== 'string') return [];
  for (const r of roles) {
    for (const expected of r.compiled.exactSubs) {
      if (expected === sub) continue;
      const a = parseSubPairs(expected, r.compiled.profile.subEscaped);
      const b = parseSubPairs(sub, r.compiled.profile.subEscaped);
      if (!a || !b) continue;
      const shared = [...a].filter(([k, v]) => b.get(k) === v).length;
      if (shared >= 1 && shared === Math.min(a.size, b.size)) return ['sub-format-changed'];
    }
  }
  return [];
}

export interface SelectionInput {
  registration: PolicyRegistration;
  claims: Readonly<Record<string, unknown>>;
  candidates: readonly LoadedRole[];
  named: boolean;
  mode: AudienceMode;
}

export interface Selection {
  decision: RoleDecision;
  winner?: CandidateResult;
}

/** Evaluates candidates and selects per policy.md §10. */
export function selectRole(input: SelectionInput): Selection {
  const { registration, claims, named, mode } = input;
  const results = input.candidates.map((r) => evaluateCandidate(r, claims, registration, mode));
  const base = {
    issuer: { registration: registration.id, iss: registration.issuer },
    tokenSummary: tokenSummary(claims),
    candidates: results.map((r) => r.explain),
  };
  const flags = subFormatFlags(input.candidates, claims);
  const withFlags = flags.length ? { flags } : {};
  const allowed = results.filter((r) => r.allowed);
  if (named) {
    const only = results[0];
    if (!only) return { decision: { decision: 'deny', reason: 'role-not-found', ...base, ...withFlags } };
    if (!only.allowed) return { decision: { decision: 'deny', reason: 'role-denied', cause: only.explain.reason, ...base, ...withFlags } };
    return { decision: { decision: 'allow', reason: 'allowed', selected: only.explain.name, ...base, ...withFlags }, winner: only };
  }
  if (allowed.length === 0) {
    const cause = results.length === 1 ? results[0]!.explain.reason : undefined;
    return { decision: { decision: 'deny', reason: 'no-role-matched', ...(cause ? { cause } : {}), ...base, ...withFlags } };
  }
  const sorted = [...allowed].sort((a, b) => compareSpecificity(b.explain.specificity, a.explain.specificity));
  const top = sorted[0]!;
  if (sorted.length > 1 && compareSpecificity(top.explain.specificity, sorted[1]!.explain.specificity) === 0) {
    return { decision: { decision: 'deny', reason: 'ambiguous-role', ...base, ...withFlags } };
  }
  return { decision: { decision: 'allow', reason: 'allowed', selected: top.explain.name, ...base, ...withFlags }, winner: top };
}

/** Metadata from string `claimMappings` (policy.md §12). A missing mapped claim is skipped (Vault). */
export function claimMetadata(role: LoadedRole, claims: Readonly<Record<string, unknown>>): Record<string, string> | { error: string } {
  const out: Record<string, string> = { role: role.compiled.document.name };
  for (const [claim, key] of Object.entries(role.compiled.document.claimMappings ?? {})) {
    const v = claims[claim];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return { error: `claim ${claim} is not a string` };
    out[key] = v;
  }
  return out;
}
