import {
  GITLAB_SUB_COMPONENTS,
  GITLAB_SUB_DEFAULT_COMPONENTS,
  GITLAB_SUB_FIRST_COMPONENTS,
  type GitlabSubComponent,
} from '../providers/gitlab.ts';
import type { Claims } from './claims.ts';

export interface SubTemplate {
  components: readonly GitlabSubComponent[];
  locked?: boolean;
}

export const DEFAULT_SUB_TEMPLATE: SubTemplate = { components: GITLAB_SUB_DEFAULT_COMPONENTS };

/** Problems with a template, as operator messages (empty when valid). */
export function subTemplateProblems(components: readonly string[]): string[] {
  const problems: string[] = [];
  if (components.length < 1 || components.length > 8) problems.push('a sub template has 1 to 8 components');
  const unknown = components.filter((c) => !(GITLAB_SUB_COMPONENTS as readonly string[]).includes(c));
  if (unknown.length > 0) problems.push(`unknown sub component(s) ${unknown.join(', ')}; allowed: ${GITLAB_SUB_COMPONENTS.join(', ')}`);
  if (new Set(components).size !== components.length) problems.push('sub components must not repeat');
  const first = components[0];
  if (first !== undefined && !(GITLAB_SUB_FIRST_COMPONENTS as readonly string[]).includes(first)) {
    problems.push(`the first sub component must be one of ${GITLAB_SUB_FIRST_COMPONENTS.join(', ')}`);
  }
  return problems;
}

/** GitHub's convention: `%` -> `%25` first, then `:` -> `%3A`, so no value can forge a pair. */
export function escapeSubValue(value: string): string {
  return value.replace(/%/g, '%25').replace(/:/g, '%3A');
}

/** `name:value` pairs joined with `:`; a pair whose value is absent or empty is skipped (GitLab). */
export function renderSub(components: readonly GitlabSubComponent[], claims: Readonly<Claims>): string {
  const parts: string[] = [];
  for (const name of components) {
    const value = claims[name];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') continue;
    parts.push(`${name}:${escapeSubValue(value)}`);
  }
  return parts.join(':');
}

export interface SubTemplateLevel<T extends { locked?: boolean } = SubTemplate> {
  level: string;
  template?: T | undefined;
}

/**
 * Template for a project, walking instance -> groups -> project: the highest locked level wins,
 * otherwise the nearest level that defines one.
 */
export function resolveSubTemplate(levels: readonly SubTemplateLevel[]): { template: SubTemplate; level: string } {
  let chosen: { template: SubTemplate; level: string } = { template: DEFAULT_SUB_TEMPLATE, level: 'default' };
  for (const { level, template } of levels) {
    if (!template) continue;
    chosen = { template, level };
    if (template.locked) break;
  }
  return chosen;
}

/** Finds the first level that tries to override a template locked above it. */
export function findLockedOverride(levels: readonly SubTemplateLevel<{ locked?: boolean }>[]): { level: string; lockedBy: string } | undefined {
  let lockedBy: string | undefined;
  for (const { level, template } of levels) {
    if (!template) continue;
    if (lockedBy !== undefined) return { level, lockedBy };
    if (template.locked) lockedBy = level;
  }
  return undefined;
}
