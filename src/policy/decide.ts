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

const pinsCache = new WeakMap<LoadedRole['pins'], { owner: string | null; project: string | null; view: RolePins }>();

export function pinsView(role: LoadedRole): RolePins {
  const hit = pinsCache.get(role.pins);
  if (hit && hit.owner === role.pins.owner && hit.project === role.pins.project) return hit.view;
  const view = computePins(role);
  pinsCache.set(role.pins, { owner: role.pins.owner, project: role.pins.project, view });
  return view;
}

function computePins(role: LoadedRole): RolePins {
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

function explainOf(role: LoadedRole, entries: TraceEntry[], result: 'allow' | 'deny', reason: ReasonCode): CandidateExplain {
  const c = role.compiled;
  return { name: c.document.name, result, reason, specificity: c.specificity, pins: pinsView(role), lints: c.lints, trace: entries };
}

function denied(role: LoadedRole, entries: TraceEntry[], reason: ReasonCode): CandidateResult {
  return { role, allowed: false, explain: explainOf(role, entries, 'deny', reason), toRecord: {} };
}

/** One pin (policy.md §8.2): null when it holds (or is recorded on this first use), else the deny reason. */
function checkPin(claims: Readonly<Record<string, unknown>>, entries: TraceEntry[], pinning: 'tofu' | 'explicit', need: boolean, pinned: string | null, claim: string, toRecord: { owner?: string; project?: string }, slot: 'owner' | 'project'): ReasonCode | null {
  if (!need && pinned === null) return null;
  const v = claims[claim];
  if (typeof v !== 'string' || !ID_RE.test(v)) {
    entries.push({ path: `pins.${claim}`, claim, op: 'eq', operand: pinned, actual: v, result: 'error', why: 'claim-missing or not an ID: the pin cannot be checked' });
    return 'id-mismatch';
  }
  if (pinned === null) {
    if (pinning === 'explicit') {
      entries.push({ path: `pins.${claim}`, claim, op: 'eq', operand: null, actual: v, result: false, why: 'explicit pin missing' });
      return 'id-mismatch';
    }
    toRecord[slot] = v;
    entries.push({ path: `pins.${claim}`, claim, op: 'eq', operand: null, actual: v, result: true, why: 'not pinned yet: recorded on this first use' });
    return null;
  }
  const ok = v === pinned;
  entries.push({ path: `pins.${claim}`, claim, op: 'eq', operand: pinned, actual: v, result: ok, why: ok ? 'pin matches' : 'id differs from the pin (resurrected or re-registered path?)' });
  return ok ? null : 'id-mismatch';
}

const ID_RE = /^[1-9][0-9]{0,19}$/;

export function evaluateCandidate(role: LoadedRole, claims: Readonly<Record<string, unknown>>, registration: PolicyRegistration, mode: AudienceMode, trace = true): CandidateResult {
  const c = role.compiled;
  const entries: TraceEntry[] = [];
  const ctx: EvalContext = { claims, profile: c.profile, shared: registration.shared, subEscaped: c.profile.subEscaped, trace: trace ? entries : undefined };
  if (c.document.issuer !== registration.id) return denied(role, entries, 'issuer-not-trusted');
  if (!audienceAccepted(claims.aud, c.document.audiences, mode)) {
    entries.push({ path: 'audiences', claim: 'aud', op: 'in', operand: c.document.audiences, actual: claims.aud, result: false, why: `audience not accepted (mode ${mode})` });
    return denied(role, entries, 'audience-mismatch');
  }
  for (let i = 0; i < c.deny.length; i++) {
    const r = (c.deny[i] as CompiledRole['deny'][number]).evaluate(ctx);
    if (r === true) return denied(role, entries, 'deny-matched');
    if (r === 'error') return denied(role, entries, reasonFromError(ctx));
  }
  const r = c.when.evaluate(ctx);
  if (r === 'error') return denied(role, entries, reasonFromError(ctx));
  if (r === false) return denied(role, entries, 'predicate-false');

  const toRecord: { owner?: string; project?: string } = {};
  const pinClaims = c.profile.pins;
  const pinning = c.document.pinning ?? 'tofu';
  if (pinClaims && pinning !== 'off') {
    const e1 = checkPin(claims, entries, pinning, c.pinRequirement.owner, role.pins.owner, pinClaims.owner, toRecord, 'owner');
    if (e1) return denied(role, entries, e1);
    const e2 = checkPin(claims, entries, pinning, c.pinRequirement.project, role.pins.project, pinClaims.project, toRecord, 'project');
    if (e2) return denied(role, entries, e2);
  }
  return { role, allowed: true, explain: explainOf(role, entries, 'allow', 'allowed'), toRecord };
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
interface MakeContext {
  registration: PolicyRegistration;
  claims: Readonly<Record<string, unknown>>;
  results: CandidateResult[];
  flags: string[];
}

function makeDecision(m: MakeContext, decision: 'allow' | 'deny', reason: ReasonCode, cause?: ReasonCode, selected?: string): RoleDecision {
  const candidates: CandidateExplain[] = [];
  for (let i = 0; i < m.results.length; i++) candidates.push((m.results[i] as CandidateResult).explain);
  const d: RoleDecision = { decision, reason, issuer: { registration: m.registration.id, iss: m.registration.issuer }, tokenSummary: tokenSummary(m.claims), candidates };
  if (cause !== undefined) d.cause = cause;
  if (selected !== undefined) d.selected = selected;
  if (m.flags.length) d.flags = m.flags;
  return d;
}

export function selectRole(input: SelectionInput): Selection {
  const { registration, claims, named, mode } = input;
  const results: CandidateResult[] = [];
  for (let i = 0; i < input.candidates.length; i++) results.push(evaluateCandidate(input.candidates[i] as LoadedRole, claims, registration, mode));
  const flags = subFormatFlags(input.candidates, claims);
  const ctx: MakeContext = { registration, claims, results, flags };
  const make = makeDecision;
  if (named) {
    const only = results[0];
    if (!only) return { decision: make(ctx, 'deny', 'role-not-found') };
    if (!only.allowed) return { decision: make(ctx, 'deny', 'role-denied', only.explain.reason) };
    return { decision: make(ctx, 'allow', 'allowed', undefined, only.explain.name), winner: only };
  }
  const allowed = results.filter((r) => r.allowed);
  if (allowed.length === 0) return { decision: make(ctx, 'deny', 'no-role-matched', results.length === 1 ? results[0]!.explain.reason : undefined) };
  const sorted = allowed.length === 1 ? allowed : [...allowed].sort((a, b) => compareSpecificity(b.explain.specificity, a.explain.specificity));
  const top = sorted[0]!;
  if (sorted.length > 1 && compareSpecificity(top.explain.specificity, sorted[1]!.explain.specificity) === 0) return { decision: make(ctx, 'deny', 'ambiguous-role') };
  return { decision: make(ctx, 'allow', 'allowed', undefined, top.explain.name), winner: top };
}

/** Metadata from string `claimMappings` (policy.md §12). A missing mapped claim is skipped (Vault). */
export function claimMetadata(role: LoadedRole, claims: Readonly<Record<string, unknown>>): Record<string, string> | { error: string } {
  const out: Record<string, string> = { role: role.compiled.document.name };
  const mappings = role.compiled.document.claimMappings;
  if (mappings === undefined) return out;
  for (const [claim, key] of Object.entries(mappings)) {
    const v = claims[claim];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return { error: `claim ${claim} is not a string` };
    out[key] = v;
  }
  return out;
}
