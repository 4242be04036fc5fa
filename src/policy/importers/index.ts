/** Importers (policy.md §11): each accepts the whole native document or just its condition part. */
import type { RoleDocument } from '../types.ts';
import { importAws } from './aws.ts';
import { ImportError, type ImportContext, type ImportDialect, type ImportResult } from './common.ts';
import { importGcp } from './gcp.ts';
import { importK8s } from './k8s.ts';
import { importOctoSts } from './octo-sts.ts';
import { importVault } from './vault.ts';

export { ImportError, type ImportContext, type ImportDialect, type ImportResult };

export function importPolicy(dialect: ImportDialect, source: unknown, ctx: ImportContext): ImportResult {
  switch (dialect) {
    case 'native': {
      const docs = Array.isArray(source) ? source : [source];
      return { roles: docs.map((d) => ({ ...(d as RoleDocument), issuer: (d as RoleDocument)?.issuer ?? ctx.registrationId })), lints: [] };
    }
    case 'aws':
      return importAws(source, ctx);
    case 'vault':
      return importVault(source, ctx);
    case 'octo-sts':
      return importOctoSts(source, ctx);
    case 'gcp':
      return importGcp(source, ctx);
    case 'k8s':
      return importK8s(source, ctx);
    default:
      throw new ImportError(`unknown dialect ${String(dialect)}: use native, aws, vault, octo-sts, gcp or k8s`);
  }
}
