import type { KeyObject } from 'node:crypto';
import { createJwsSigner, type JwsSigner } from './jws.ts';
import {
  exportPrivateKeyDer,
  generateSigningKey,
  importPrivateKeyDer,
  materialFromPrivateKey,
  type GenerateOptions,
  type PublicSigningJwk,
  type SigningAlg,
} from './keys.ts';

/**
 * Signing-key rotation (issuer.md §12): next (published, not signing) -> active (signing) ->
 * retired (published, not signing) -> removed. The plan is a pure function of the key rows and the
 * clock; `Keyring` applies it against a storage backend and keeps the active signers in memory.
 */
export type KeyState = 'next' | 'active' | 'retired' | 'removed';

export interface KeyRecord {
  kid: string;
  alg: SigningAlg;
  state: KeyState;
  publicJwk: PublicSigningJwk;
  /** Published in the JWKS from this time on (creation). */
  createdAt: number;
  /** Planned activation; a `next` key never signs before `createdAt + prePublish`. */
  activateAt: number;
  activatedAt: number | null;
  retiredAt: number | null;
  removeAt: number | null;
  removedAt: number | null;
}

export interface StoredKey extends KeyRecord {
  sealedPrivateKey: string;
}

export interface RotationPolicy {
  /** Seconds a key signs before its successor takes over (default 90 days). */
  rotationPeriod: number;
  /** Seconds a `next` key is published before it may sign (at least 48 h). */
  prePublish: number;
  /** The longest lifetime of any token we sign (instance `max_id_token_lifetime`). */
  maxTokenLifetime: number;
  /** Extra time a retired key stays published after its last token expired (24 h: JWKS caches). */
  retentionGrace: number;
}

export const MIN_PRE_PUBLISH = 48 * 3600;
export const DEFAULT_ROTATION_POLICY: RotationPolicy = {
  rotationPeriod: 90 * 86400,
  prePublish: MIN_PRE_PUBLISH,
  maxTokenLifetime: 86400,
  retentionGrace: 86400,
};

export type KeyringAction =
  | { type: 'generate'; alg: SigningAlg; state: 'active' | 'next'; activateAt: number; reason: string }
  | { type: 'activate'; kid: string; reason: string }
  | { type: 'retire'; kid: string; removeAt: number; reason: string }
  | { type: 'remove'; kid: string; reason: string };

export function validateRotationPolicy(policy: RotationPolicy): void {
  if (!Number.isSafeInteger(policy.prePublish) || policy.prePublish < MIN_PRE_PUBLISH) {
    throw new Error(`pre-publication must be at least ${String(MIN_PRE_PUBLISH)} s (48 h): relying parties cache JWKS for up to a day`);
  }
  if (!Number.isSafeInteger(policy.rotationPeriod) || policy.rotationPeriod <= policy.prePublish) {
    throw new Error('rotation period must be an integer number of seconds longer than the pre-publication period');
  }
  if (!Number.isSafeInteger(policy.maxTokenLifetime) || policy.maxTokenLifetime < 60) throw new Error('maxTokenLifetime must be >= 60 s');
  if (!Number.isSafeInteger(policy.retentionGrace) || policy.retentionGrace < 86400) throw new Error('retentionGrace must be >= 86400 s (24 h)');
}

export function retentionEnd(retiredAt: number, policy: RotationPolicy): number {
  return retiredAt + policy.maxTokenLifetime + policy.retentionGrace;
}

/** Scheduled transitions for one algorithm at time `now`. */
export function planRotation(keys: readonly KeyRecord[], alg: SigningAlg, now: number, policy: RotationPolicy): KeyringAction[] {
  const actions: KeyringAction[] = [];
  const mine = keys.filter((k) => k.alg === alg);
  const actives = mine.filter((k) => k.state === 'active').sort((a, b) => (b.activatedAt ?? 0) - (a.activatedAt ?? 0));
  const nexts = mine.filter((k) => k.state === 'next').sort((a, b) => a.createdAt - b.createdAt);
  for (const extra of actives.slice(1)) {
    actions.push({ type: 'retire', kid: extra.kid, removeAt: retentionEnd(now, policy), reason: 'more than one active key' });
  }
  for (const k of mine) {
    if (k.state === 'retired' && k.removeAt !== null && now >= k.removeAt) {
      actions.push({ type: 'remove', kid: k.kid, reason: 'retention ended' });
    }
  }
  const active = actives[0];
  const next = nexts[0];
  if (!active) {
    if (next) actions.push({ type: 'activate', kid: next.kid, reason: 'no active key; the published next key takes over' });
    else actions.push({ type: 'generate', alg, state: 'active', activateAt: now, reason: 'bootstrap: no key for this algorithm' });
    return actions;
  }
  const due = (active.activatedAt ?? active.createdAt) + policy.rotationPeriod;
  if (next) {
    if (now >= next.activateAt && now >= next.createdAt + policy.prePublish) {
      actions.push({ type: 'activate', kid: next.kid, reason: 'scheduled rotation' });
      actions.push({ type: 'retire', kid: active.kid, removeAt: retentionEnd(now, policy), reason: 'scheduled rotation' });
    }
  } else if (now >= due - policy.prePublish) {
    actions.push({ type: 'generate', alg, state: 'next', activateAt: Math.max(due, now + policy.prePublish), reason: 'pre-publish the successor' });
  }
  return actions;
}

export interface KeyringBackend {
  list(): Promise<StoredKey[]>;
  insert(key: StoredKey): Promise<void>;
  /** Compare-and-set on `state`: returns false when another process changed the row first. */
  update(kid: string, expectedState: KeyState, patch: Partial<KeyRecord>): Promise<boolean>;
}

export interface KeySealer {
  seal(plaintext: Buffer, aad: string): string | Promise<string>;
  open(sealed: string, aad: string): Buffer | Promise<Buffer>;
}

export interface KeyringOptions {
  backend: KeyringBackend;
  sealer: KeySealer;
  algs: readonly SigningAlg[];
  policy: RotationPolicy;
  clock: () => number;
  generate?: GenerateOptions;
  /** Injected for tests/benchmarks: key generation (RSA is slow). */
  generateKey?: (alg: SigningAlg) => Promise<{ alg: SigningAlg; privateKey: KeyObject }>;
}

export interface ActiveSigner {
  signer: JwsSigner;
  record: KeyRecord;
}

export class Keyring {
  private readonly opts: KeyringOptions;
  private records: StoredKey[] = [];
  private readonly signers = new Map<string, JwsSigner>();
  private readonly active = new Map<SigningAlg, ActiveSigner>();

  constructor(options: KeyringOptions) {
    validateRotationPolicy(options.policy);
    if (options.algs.length === 0) throw new Error('at least one signing algorithm is required');
    this.opts = options;
  }

  get policy(): RotationPolicy {
    return this.opts.policy;
  }

  /** Reloads rows, applies due transitions, refreshes the in-memory signers. Returns what it did. */
  async tick(): Promise<KeyringAction[]> {
    const done: KeyringAction[] = [];
    for (let round = 0; round < 4; round++) {
      this.records = await this.opts.backend.list();
      const now = this.opts.clock();
      const actions = this.opts.algs.flatMap((alg) => planRotation(this.records, alg, now, this.opts.policy));
      if (actions.length === 0) break;
      for (const action of actions) await this.apply(action, now);
      done.push(...actions);
    }
    await this.refresh();
    return done;
  }

  /**
   * Manual rotation. Normal: activate the successor if it has been published long enough, otherwise
   * publish one that activates after the pre-publication period. Emergency: remove the active key at
   * once and sign with the published successor or a fresh key.
   */
  async rotate(alg: SigningAlg, options: { emergency?: boolean } = {}): Promise<KeyringAction[]> {
    this.records = await this.opts.backend.list();
    const now = this.opts.clock();
    const mine = this.records.filter((k) => k.alg === alg);
    const active = mine.find((k) => k.state === 'active');
    const next = mine.filter((k) => k.state === 'next').sort((a, b) => a.createdAt - b.createdAt)[0];
    const actions: KeyringAction[] = [];
    if (options.emergency) {
      if (active) actions.push({ type: 'remove', kid: active.kid, reason: 'emergency rotation: key withdrawn' });
      if (next) actions.push({ type: 'activate', kid: next.kid, reason: 'emergency rotation' });
      else actions.push({ type: 'generate', alg, state: 'active', activateAt: now, reason: 'emergency rotation' });
    } else if (!active) {
      return this.tick();
    } else if (next && now >= next.createdAt + this.opts.policy.prePublish) {
      actions.push({ type: 'activate', kid: next.kid, reason: 'manual rotation' });
      actions.push({ type: 'retire', kid: active.kid, removeAt: retentionEnd(now, this.opts.policy), reason: 'manual rotation' });
    } else if (!next) {
      actions.push({ type: 'generate', alg, state: 'next', activateAt: now + this.opts.policy.prePublish, reason: 'manual rotation scheduled' });
    }
    for (const action of actions) await this.apply(action, now);
    this.records = await this.opts.backend.list();
    await this.refresh();
    return actions;
  }

  /** Removes one key from publication at once (compromise). */
  async remove(kid: string): Promise<boolean> {
    this.records = await this.opts.backend.list();
    const row = this.records.find((k) => k.kid === kid);
    if (!row || row.state === 'removed') return false;
    const ok = await this.opts.backend.update(kid, row.state, { state: 'removed', removedAt: this.opts.clock() });
    await this.tick();
    return ok;
  }

  list(): KeyRecord[] {
    return this.records.map(({ sealedPrivateKey: _sealed, ...rest }) => rest);
  }

  /** Published keys: next, active and retired. */
  jwks(): { keys: PublicSigningJwk[] } {
    const order: Record<KeyState, number> = { active: 0, next: 1, retired: 2, removed: 3 };
    return {
      keys: this.records
        .filter((k) => k.state !== 'removed')
        .sort((a, b) => order[a.state] - order[b.state] || b.createdAt - a.createdAt)
        .map((k) => ({ ...k.publicJwk })),
    };
  }

  /** The signer for `alg`, synchronously from memory (refreshed by `tick`). */
  signer(alg: SigningAlg): ActiveSigner | undefined {
    return this.active.get(alg);
  }

  private async apply(action: KeyringAction, now: number): Promise<void> {
    const { backend } = this.opts;
    switch (action.type) {
      case 'generate': {
        const gen = this.opts.generateKey
          ? await this.opts.generateKey(action.alg)
          : await generateSigningKey(action.alg, this.opts.generate);
        const material = await materialFromPrivateKey(action.alg, gen.privateKey);
        if (this.records.some((k) => k.kid === material.kid)) throw new Error('generated key collides with an existing kid');
        const sealedPrivateKey = await this.opts.sealer.seal(exportPrivateKeyDer(material.privateKey), sealAad(material.kid));
        await backend.insert({
          kid: material.kid,
          alg: action.alg,
          state: action.state,
          publicJwk: material.publicJwk,
          createdAt: now,
          activateAt: action.activateAt,
          activatedAt: action.state === 'active' ? now : null,
          retiredAt: null,
          removeAt: null,
          removedAt: null,
          sealedPrivateKey,
        });
        break;
      }
      case 'activate':
        await backend.update(action.kid, 'next', { state: 'active', activatedAt: now });
        break;
      case 'retire':
        await backend.update(action.kid, 'active', { state: 'retired', retiredAt: now, removeAt: action.removeAt });
        break;
      case 'remove': {
        const row = this.records.find((k) => k.kid === action.kid);
        if (row) await backend.update(action.kid, row.state, { state: 'removed', removedAt: now });
        break;
      }
    }
  }

  private async refresh(): Promise<void> {
    for (const alg of this.opts.algs) {
      const row = this.records
        .filter((k) => k.alg === alg && k.state === 'active')
        .sort((a, b) => (b.activatedAt ?? 0) - (a.activatedAt ?? 0))[0];
      if (!row) {
        this.active.delete(alg);
        continue;
      }
      let signer = this.signers.get(row.kid);
      if (!signer) {
        const der = await this.opts.sealer.open(row.sealedPrivateKey, sealAad(row.kid));
        const material = await materialFromPrivateKey(alg, importPrivateKeyDer(der));
        if (material.kid !== row.kid) throw new Error(`stored key ${row.kid} does not match its public key`);
        signer = createJwsSigner({ alg, kid: row.kid, privateKey: material.privateKey });
        this.signers.set(row.kid, signer);
      }
      const { sealedPrivateKey: _sealed, ...record } = row;
      this.active.set(alg, { signer, record });
    }
    const live = new Set(this.records.filter((k) => k.state === 'active').map((k) => k.kid));
    for (const kid of this.signers.keys()) if (!live.has(kid)) this.signers.delete(kid);
  }
}

export function sealAad(kid: string): string {
  return `issuer_signing_keys:${kid}`;
}
