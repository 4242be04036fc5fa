import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forEachStore, openReplica } from '../helpers/store.ts';
import { createPolicyEngine } from '../../src/policy/engine.ts';
import type { PolicyRegistration } from '../../src/policy/types.ts';
import { F2, GITHUB, GITLAB } from './helpers.ts';

const TENANT_B_ISSUER: PolicyRegistration = { id: 'git.a.test', issuer: 'https://git.a.test', profile: 'gitlab', shared: false, tenant: 'a' };
const REGS = [GITLAB, GITHUB, TENANT_B_ISSUER];
const role = (name: string, when: unknown, extra: Record<string, unknown> = {}) => ({ name, issuer: 'gitlab.com', audiences: ['pypi'], when, ...extra });

forEachStore((_kind, open) => {
  test('roles: save with validation and lints, list, named and unnamed decisions, delete', async () => {
    const store = await open();
    const engine = await createPolicyEngine({ store, registrations: REGS, maxStaleSeconds: 0 });
    try {
      const { role: saved, lints } = await engine.saveRole(role('deploy', { all: [{ claim: 'project_path', eq: 'foo/bar' }, { claim: 'ref', glob: 'main*' }] }, { grant: { type: 'oauth', scopes: ['deploy'], maxTtl: 900 } }));
      assert.equal(saved.document.name, 'deploy');
      assert.ok(lints.some((l) => l.code === 'wildcard-after-literal'));
      await assert.rejects(engine.saveRole(role('open', { claim: 'ref', eq: 'main' })), (e: { code?: string }) => e.code === 'tenant_binding_missing');
      await assert.rejects(engine.saveRole({ ...role('x', { claim: 'project_id', eq: '1' }), issuer: 'nope' }), (e: { code?: string }) => e.code === 'issuer_unknown');
      await assert.rejects(engine.saveRole({ ...role('x', { claim: 'project_id', eq: '1' }), extra: true }), (e: { code?: string }) => e.code === 'role_invalid');
      assert.equal((await engine.listRoles()).length, 1);

      const named = await engine.decideRole({ registrationId: 'gitlab.com', claims: F2 }, { roleName: 'deploy' });
      assert.equal(named.decision, 'allow');
      assert.equal(named.metadata?.role, 'deploy');
      assert.equal(named.role?.document.grant?.maxTtl, 900);
      assert.deepEqual(named.role?.pins, { namespace_id: '123', project_id: '55235664' }, 'tofu pins recorded');
      assert.equal((await engine.decideRole({ registrationId: 'gitlab.com', claims: F2 }, { roleName: 'missing' })).reason, 'role-not-found');
      assert.equal((await engine.decideRole({ registrationId: 'gitlab.com', claims: F2 }, { grantType: 'oauth' })).selected, 'deploy');
      assert.equal((await engine.decideRole({ registrationId: 'gitlab.com', claims: F2 }, { grantType: 'vault' })).reason, 'no-role-matched');
      assert.equal((await engine.decideRole({ registrationId: 'unknown', claims: F2 })).reason, 'issuer-not-trusted');

      const resurrected = await engine.decideRole({ registrationId: 'gitlab.com', claims: { ...F2, namespace_id: '999' } }, { roleName: 'deploy' });
      assert.equal(resurrected.reason, 'role-denied');
      assert.equal(resurrected.cause, 'id-mismatch');

      await assert.rejects(engine.resetRolePins('deploy', { actor: 'alice', reason: '' }), (e: { code?: string }) => e.code === 'audit_required');
      const reset = await engine.resetRolePins('deploy', { actor: 'alice', reason: 'group re-created' });
      assert.deepEqual(reset.pins, {});
      const audit = await engine.repository.listAudit('role', saved.id);
      assert.ok(audit.some((a) => a.action === 'pins.reset' && a.actor === 'alice'));
      assert.equal((await engine.decideRole({ registrationId: 'gitlab.com', claims: { ...F2, namespace_id: '999' } }, { roleName: 'deploy' })).decision, 'allow');

      // Saving the role again keeps the recorded pins.
      await engine.saveRole(role('deploy', { all: [{ claim: 'project_path', eq: 'foo/bar' }] }));
      assert.deepEqual((await engine.getRole('deploy'))?.pins, { namespace_id: '999', project_id: '55235664' });

      assert.equal(await engine.deleteRole('deploy'), true);
      assert.equal(await engine.getRole('deploy'), undefined);
    } finally {
      await engine.close();
      await store.close();
    }
  });

  test('indexed lookup: only roles bound to the token project are candidates', async () => {
    const store = await open();
    const engine = await createPolicyEngine({ store, registrations: REGS, maxStaleSeconds: 0 });
    try {
      for (let i = 0; i < 30; i++) await engine.saveRole(role(`p${i}`, { claim: 'project_path', eq: `grp/p${i}` }));
      await engine.saveRole(role('by-id', { all: [{ claim: 'project_id', eq: '55235664' }, { claim: 'environment', eq: 'prod' }] }));
      await engine.saveRole(role('by-prefix', { claim: 'project_path', prefix: 'foo/' }));
      const d = await engine.decideRole({ registrationId: 'gitlab.com', claims: F2 }, { recordPins: false });
      const names = d.candidates.map((c) => c.name).sort();
      assert.deepEqual(names, ['by-id', 'by-prefix']);
      assert.equal(d.selected, 'by-prefix');
      const withEnv = await engine.decideRole({ registrationId: 'gitlab.com', claims: { ...F2, environment: 'prod' } }, { recordPins: false });
      assert.equal(withEnv.selected, 'by-id');
      const p7 = await engine.decideRole({ registrationId: 'gitlab.com', claims: { ...F2, project_path: 'GRP/P7', namespace_path: 'grp', project_id: '7' } }, { recordPins: false });
      assert.deepEqual(p7.candidates.map((c) => c.name), ['p7', 'by-prefix'], 'indexed bucket plus the unindexed prefix role');
      assert.equal(p7.selected, 'p7');
    } finally {
      await engine.close();
      await store.close();
    }
  });

  test('tenant isolation of registrations and roles (C3)', async () => {
    const store = await open();
    const engine = await createPolicyEngine({ store, registrations: REGS, maxStaleSeconds: 0 });
    try {
      const doc = { name: 'a-role', issuer: 'git.a.test', audiences: ['x'], when: { claim: 'ref', eq: 'main' } };
      await assert.rejects(engine.saveRole(doc, { tenant: 'b' }), (e: { code?: string }) => e.code === 'issuer_unknown');
      await engine.saveRole(doc, { tenant: 'a' });
      const claims = { iss: 'https://git.a.test', aud: 'x', ref: 'main', namespace_id: '1', project_id: '2' };
      assert.equal((await engine.decideRole({ registrationId: 'git.a.test', claims }, { tenant: 'b' })).reason, 'issuer-not-trusted');
      assert.equal((await engine.decideRole({ registrationId: 'git.a.test', claims }, { tenant: 'a' })).decision, 'allow');
      assert.equal((await engine.decideRole({ registrationId: 'git.a.test', claims }, { tenant: 'a', roleName: 'a-role' })).decision, 'allow');
      assert.equal((await engine.getRole('a-role', { tenant: 'b' })), undefined);
    } finally {
      await engine.close();
      await store.close();
    }
  });

  test('replicas: generation counter invalidates the index; TOFU race has one winner', async () => {
    const store = await open();
    const replica = await openReplica(store);
    let now = 1000;
    const clock = () => now;
    const a = await createPolicyEngine({ store, registrations: REGS, clock, maxStaleSeconds: 5 });
    const b = await createPolicyEngine({ store: replica, registrations: REGS, clock, maxStaleSeconds: 5 });
    try {
      await a.saveRole(role('r', { claim: 'namespace_path', eq: 'foo' }));
      assert.equal((await b.decideRole({ registrationId: 'gitlab.com', claims: F2 }, { roleName: 'r', recordPins: false })).reason, 'role-not-found', 'stale within maxStaleSeconds');
      now += 5;
      const [x, y] = await Promise.all([
        a.decideRole({ registrationId: 'gitlab.com', claims: F2 }, { roleName: 'r' }),
        b.decideRole({ registrationId: 'gitlab.com', claims: { ...F2, namespace_id: '777' } }, { roleName: 'r' }),
      ]);
      assert.equal([x, y].filter((d) => d.decision === 'allow').length, 1);
      assert.equal([x, y].find((d) => d.decision === 'deny')?.cause, 'id-mismatch');
    } finally {
      await a.close();
      await b.close();
      await replica.close();
      await store.close();
    }
  });

  test('an unavailable store denies (policy-store-unavailable), never fails open', async () => {
    const store = await open();
    const engine = await createPolicyEngine({ store, registrations: REGS, maxStaleSeconds: 0 });
    await engine.saveRole(role('r', { claim: 'namespace_path', eq: 'foo' }));
    await store.close();
    const d = await engine.decideRole({ registrationId: 'gitlab.com', claims: F2 }, { roleName: 'r' });
    assert.equal(d.reason, 'policy-store-unavailable');
    const p = await engine.decidePublisher({ registrationId: 'gitlab.com', claims: F2 });
    assert.equal(p.reason, 'policy-store-unavailable');
    await engine.close();
  });
});
