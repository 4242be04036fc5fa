import type { SigningAlg } from '../jose/keys.ts';
import type { GitlabSubComponent } from '../providers/gitlab.ts';
import type { ClaimLevel } from './custom-claims.ts';
import { issuerError } from './errors.ts';
import { settingsChain, type IssuerConfig } from './config.ts';
import { resolveSubTemplate, type SubTemplate } from './sub.ts';

/** Everything the configuration says about one project, inherited instance -> groups -> project. */
export interface EffectiveSettings {
  subTemplate: SubTemplate;
  subTemplateLevel: string;
  claimLevels: ClaimLevel[];
  onDemand: boolean;
  allowedAudiences: string[];
  anyAudience: boolean;
  legacyJobJwt: boolean;
  groupsDirect: boolean;
  algorithm: SigningAlg;
  claimProfile: 'gitlab' | 'github';
}

export function effectiveSettings(cfg: IssuerConfig, projectPath: string, projectId: string): EffectiveSettings {
  const project = cfg.projects[projectPath];
  if (project?.id !== undefined && project.id !== projectId) {
    throw issuerError(
      'settings_id_mismatch',
      `the settings for ${projectPath} are pinned to project ID ${project.id}, but this job runs in project ${projectId}; the path was reused by another project: update issuer.projects.${projectPath}.id if this is intended`,
      403,
    );
  }
  const chain = settingsChain(cfg, projectPath, 'project');
  const nearest = <K extends 'idTokensOnDemand' | 'allowedAudiences' | 'anyAudience' | 'legacyJobJwt' | 'groupsDirect' | 'algorithm' | 'claimProfile'>(key: K) => {
    for (let i = chain.length - 1; i >= 0; i--) {
      const v = chain[i]!.settings[key];
      if (v !== undefined) return v;
    }
    return undefined;
  };
  const sub = resolveSubTemplate(
    chain.map((l) => ({
      level: l.level,
      template: l.settings.subTemplate ? { components: l.settings.subTemplate.components as GitlabSubComponent[], locked: l.settings.subTemplate.locked } : undefined,
    })),
  );
  return {
    subTemplate: sub.template,
    subTemplateLevel: sub.level,
    claimLevels: chain.map((l) => ({ level: l.level, definitions: l.settings.claims })),
    onDemand: nearest('idTokensOnDemand') ?? cfg.idTokensOnDemand,
    allowedAudiences: nearest('allowedAudiences') ?? [],
    anyAudience: nearest('anyAudience') ?? false,
    legacyJobJwt: nearest('legacyJobJwt') ?? cfg.legacyJobJwt,
    groupsDirect: nearest('groupsDirect') ?? false,
    algorithm: nearest('algorithm') ?? cfg.algorithms[0]!,
    claimProfile: nearest('claimProfile') ?? cfg.claimProfile,
  };
}

/** Custom-claim names declared at instance and group level (listed in `claims_supported`). */
export function declaredClaimNames(cfg: IssuerConfig): string[] {
  const names = new Set<string>(cfg.claims.map((c) => c.name));
  for (const g of Object.values(cfg.groups)) for (const c of g.claims) names.add(c.name);
  return [...names];
}
