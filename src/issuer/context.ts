import { issuerError } from './errors.ts';
import { hasControlChars } from './text.ts';
import {
  GITLAB_DEPLOYMENT_TIERS,
  GITLAB_ENVIRONMENT_ACTIONS,
  GITLAB_PROJECT_VISIBILITIES,
  GITLAB_RUNNER_ENVIRONMENTS,
  GITLAB_USER_ACCESS_LEVELS,
} from '../providers/gitlab.ts';

/**
 * The facts about one CI job, read from GitLab's predefined CI/CD variables plus the documented
 * `CI_OIDC_*` extra keys for facts GitLab has no variable for. Everything here is supplied by the
 * authenticated CI system, never by the job's own variables.
 */
export interface JobUser {
  id: string;
  login: string;
  email: string;
  accessLevel?: (typeof GITLAB_USER_ACCESS_LEVELS)[number];
  identities?: { provider: string; extern_uid: string }[];
}

export interface JobEnvironment {
  name: string;
  protected: boolean;
  tier?: (typeof GITLAB_DEPLOYMENT_TIERS)[number];
  action?: (typeof GITLAB_ENVIRONMENT_ACTIONS)[number];
}

export interface JobContext {
  projectId: string;
  projectPath: string;
  namespaceId: string;
  namespacePath: string;
  projectVisibility: (typeof GITLAB_PROJECT_VISIBILITIES)[number];
  jobProjectId: string;
  jobProjectPath: string;
  jobNamespaceId: string;
  jobNamespacePath: string;
  pipelineId: string;
  pipelineSource: string;
  jobId: string;
  jobName: string;
  jobSource: string;
  /** Seconds; absent when the CI system sets no timeout. */
  jobTimeout?: number;
  ref: string;
  refType: 'branch' | 'tag';
  refProtected: boolean;
  sha: string;
  configPath: string;
  /** True when the pipeline configuration comes from the project's own repository. */
  configInProject: boolean;
  serverHost?: string;
  user?: JobUser;
  groupsDirect?: string[];
  runnerId: number;
  runnerEnvironment: (typeof GITLAB_RUNNER_ENVIRONMENTS)[number];
  environment?: JobEnvironment;
  jobConfig?: { url: string; sha: string };
}

/** The extra keys ci-oidc reads besides GitLab's predefined variables. */
export const EXTRA_CONTEXT_KEYS = {
  CI_OIDC_USER_ACCESS_LEVEL: 'the triggering user role in the project: guest, reporter, developer, maintainer, owner',
  CI_OIDC_USER_IDENTITIES: 'JSON array of {"provider","extern_uid"} when the user opted in to pass identities',
  CI_OIDC_GROUPS_DIRECT: 'JSON array of group full paths the user is a direct member of',
  CI_OIDC_RUNNER_ENVIRONMENT: 'gitlab-hosted when the runner is operated by the instance operator, else self-hosted (default)',
  CI_OIDC_ENVIRONMENT_PROTECTED: 'true when the deployment environment is protected (default false)',
  CI_OIDC_CONFIG_SOURCE: 'where the pipeline config came from: repository_source (default when CI_CONFIG_PATH is a local file), or another GitLab source such as remote_source, external_project_source, auto_devops_source, pipeline_execution_policy_forced',
  CI_OIDC_JOB_SOURCE: 'how the job was created, e.g. push, pipeline_execution_policy (default: CI_PIPELINE_SOURCE)',
  CI_OIDC_SOURCE_NAMESPACE_ID: 'fork merge-request pipelines: the ID of the fork project namespace (required then)',
  CI_OIDC_SOURCE_NAMESPACE_PATH: 'fork merge-request pipelines: the fork namespace path (default: parent of CI_MERGE_REQUEST_SOURCE_PROJECT_PATH)',
  CI_OIDC_JOB_CONFIG_URL: 'jobs injected by a security policy: URL of the policy file',
  CI_OIDC_JOB_CONFIG_SHA: 'jobs injected by a security policy: commit of the policy file',
} as const;

const ID = /^[1-9][0-9]{0,19}$/;
const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
const PATH_SEGMENT = /^[A-Za-z0-9_.][A-Za-z0-9_.+-]{0,254}$/;
const WORD = /^[a-z][a-z0-9_]{0,63}$/;
const MAX_TIMEOUT = 30 * 86400;

export type Vars = Readonly<Record<string, string | undefined>>;

const bad = (name: string, why: string): Error =>
  issuerError('job_context_invalid', `job context variable ${name} ${why}`);

function str(vars: Vars, name: string): string | undefined {
  const v = vars[name];
  return v === undefined || v === '' ? undefined : v;
}

function required(vars: Vars, name: string): string {
  const v = str(vars, name);
  if (v === undefined) throw bad(name, 'is missing: the CI system must send it with every job');
  return v;
}

function id(vars: Vars, name: string, value = required(vars, name)): string {
  if (!ID.test(value)) throw bad(name, 'must be a decimal ID without leading zeros (GitLab IDs are positive integers)');
  return value;
}

function text(name: string, value: string, max = 255): string {
  if (value.length > max) throw bad(name, `is longer than ${String(max)} characters`);
  if (hasControlChars(value)) throw bad(name, 'contains control characters');
  if (value !== value.trim()) throw bad(name, 'has leading or trailing whitespace');
  return value;
}

function fullPath(name: string, value: string): string {
  text(name, value, 1024);
  const parts = value.split('/');
  if (parts.some((p) => !PATH_SEGMENT.test(p) || p === '.' || p === '..' || p.endsWith('.git'))) {
    throw bad(name, 'must be a GitLab full path: segments of letters, digits, "_", "-", "." separated by "/"');
  }
  return value;
}

function parentPath(name: string, path: string): string {
  const i = path.lastIndexOf('/');
  if (i <= 0) throw bad(name, 'must include a namespace (group/project)');
  return path.slice(0, i);
}

/** git check-ref-format rules, plus ':' which GitLab paths and refs never contain. */
export function isValidRefName(ref: string): boolean {
  if (ref.length === 0 || ref.length > 1024) return false;
  if (hasControlChars(ref) || /[ ~^:?*[\\]/.test(ref)) return false;
  if (ref.includes('..') || ref.includes('@{') || ref === '@' || ref.includes('//')) return false;
  if (ref.startsWith('/') || ref.endsWith('/') || ref.endsWith('.') || ref.startsWith('-')) return false;
  return !ref.split('/').some((p) => p.startsWith('.') || p.endsWith('.lock'));
}

function ref(name: string, value: string): string {
  if (!isValidRefName(value)) throw bad(name, 'is not a valid git ref name');
  return value;
}

function bool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw bad(name, 'must be "true" or "false"');
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw bad(name, `must be one of ${allowed.join(', ')}`);
  return value as T;
}

function json(name: string, value: string): unknown {
  if (value.length > 65536) throw bad(name, 'is longer than 64 KiB');
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw bad(name, 'must be valid JSON');
  }
}

const LOCAL_CONFIG_PATH = /^[^@\s]+$/;

/** Reads and validates the job context. A missing or malformed required variable names itself. */
export function parseJobContext(vars: Vars): JobContext {
  const jobProjectId = id(vars, 'CI_PROJECT_ID');
  const jobProjectPath = fullPath('CI_PROJECT_PATH', required(vars, 'CI_PROJECT_PATH'));
  const jobNamespaceId = id(vars, 'CI_PROJECT_NAMESPACE_ID');
  const jobNamespacePath = fullPath('CI_PROJECT_NAMESPACE', required(vars, 'CI_PROJECT_NAMESPACE'));
  if (parentPath('CI_PROJECT_PATH', jobProjectPath) !== jobNamespacePath) {
    throw bad('CI_PROJECT_NAMESPACE', 'must be the namespace part of CI_PROJECT_PATH');
  }

  // Fork merge-request pipelines run in the target project but the code comes from the fork:
  // project_* names the fork (GitLab 18.2.2), job_project_* where the job runs (R9).
  let projectId = jobProjectId;
  let projectPath = jobProjectPath;
  let namespaceId = jobNamespaceId;
  let namespacePath = jobNamespacePath;
  const sourceProjectId = str(vars, 'CI_MERGE_REQUEST_SOURCE_PROJECT_ID');
  if (sourceProjectId !== undefined && sourceProjectId !== jobProjectId) {
    projectId = id(vars, 'CI_MERGE_REQUEST_SOURCE_PROJECT_ID', sourceProjectId);
    projectPath = fullPath('CI_MERGE_REQUEST_SOURCE_PROJECT_PATH', required(vars, 'CI_MERGE_REQUEST_SOURCE_PROJECT_PATH'));
    namespaceId = id(vars, 'CI_OIDC_SOURCE_NAMESPACE_ID');
    namespacePath = fullPath(
      'CI_OIDC_SOURCE_NAMESPACE_PATH',
      str(vars, 'CI_OIDC_SOURCE_NAMESPACE_PATH') ?? parentPath('CI_MERGE_REQUEST_SOURCE_PROJECT_PATH', projectPath),
    );
    if (parentPath('CI_MERGE_REQUEST_SOURCE_PROJECT_PATH', projectPath) !== namespacePath) {
      throw bad('CI_OIDC_SOURCE_NAMESPACE_PATH', 'must be the namespace part of CI_MERGE_REQUEST_SOURCE_PROJECT_PATH');
    }
  }

  const tag = str(vars, 'CI_COMMIT_TAG');
  let refName: string;
  let refType: 'branch' | 'tag';
  if (tag !== undefined) {
    refName = ref('CI_COMMIT_TAG', tag);
    refType = 'tag';
  } else {
    const branchVar = ['CI_COMMIT_BRANCH', 'CI_MERGE_REQUEST_SOURCE_BRANCH_NAME', 'CI_COMMIT_REF_NAME'].find((n) => str(vars, n) !== undefined);
    if (!branchVar) throw bad('CI_COMMIT_REF_NAME', 'is missing: send CI_COMMIT_REF_NAME with CI_COMMIT_BRANCH or CI_COMMIT_TAG');
    refName = ref(branchVar, str(vars, branchVar)!);
    refType = 'branch';
  }

  const sha = required(vars, 'CI_COMMIT_SHA');
  if (!SHA.test(sha)) throw bad('CI_COMMIT_SHA', 'must be a lowercase hexadecimal commit SHA (40 or 64 characters)');

  const timeoutText = str(vars, 'CI_JOB_TIMEOUT');
  let jobTimeout: number | undefined;
  if (timeoutText !== undefined) {
    if (!/^[0-9]{1,8}$/.test(timeoutText)) throw bad('CI_JOB_TIMEOUT', 'must be a whole number of seconds');
    jobTimeout = Number(timeoutText);
    if (jobTimeout < 60 || jobTimeout > MAX_TIMEOUT) throw bad('CI_JOB_TIMEOUT', `must be between 60 and ${String(MAX_TIMEOUT)} seconds`);
  }

  const runnerText = required(vars, 'CI_RUNNER_ID');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(runnerText) || !Number.isSafeInteger(Number(runnerText))) {
    throw bad('CI_RUNNER_ID', 'must be a non-negative integer');
  }

  const pipelineSource = required(vars, 'CI_PIPELINE_SOURCE');
  if (!WORD.test(pipelineSource)) throw bad('CI_PIPELINE_SOURCE', 'must be a lowercase word such as push, web, schedule, merge_request_event');
  const jobSource = str(vars, 'CI_OIDC_JOB_SOURCE') ?? pipelineSource;
  if (!WORD.test(jobSource)) throw bad('CI_OIDC_JOB_SOURCE', 'must be a lowercase word such as push or pipeline_execution_policy');

  const configPath = text('CI_CONFIG_PATH', str(vars, 'CI_CONFIG_PATH') ?? '.gitlab-ci.yml', 1024);
  const configSource = str(vars, 'CI_OIDC_CONFIG_SOURCE');
  if (configSource !== undefined && !WORD.test(configSource)) throw bad('CI_OIDC_CONFIG_SOURCE', 'must be a GitLab config source name such as repository_source');
  const localPath = LOCAL_CONFIG_PATH.test(configPath) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(configPath);
  const configInProject = configSource === undefined ? localPath : configSource === 'repository_source' && localPath;

  const ctx: JobContext = {
    projectId,
    projectPath,
    namespaceId,
    namespacePath,
    projectVisibility: oneOf('CI_PROJECT_VISIBILITY', required(vars, 'CI_PROJECT_VISIBILITY'), GITLAB_PROJECT_VISIBILITIES),
    jobProjectId,
    jobProjectPath,
    jobNamespaceId,
    jobNamespacePath,
    pipelineId: id(vars, 'CI_PIPELINE_ID'),
    pipelineSource,
    jobId: id(vars, 'CI_JOB_ID'),
    jobName: text('CI_JOB_NAME', required(vars, 'CI_JOB_NAME'), 255),
    jobSource,
    ref: refName,
    refType,
    refProtected: bool('CI_COMMIT_REF_PROTECTED', str(vars, 'CI_COMMIT_REF_PROTECTED'), false),
    sha,
    configPath,
    configInProject,
    runnerId: Number(runnerText),
    runnerEnvironment: oneOf('CI_OIDC_RUNNER_ENVIRONMENT', str(vars, 'CI_OIDC_RUNNER_ENVIRONMENT') ?? 'self-hosted', GITLAB_RUNNER_ENVIRONMENTS),
  };
  if (jobTimeout !== undefined) ctx.jobTimeout = jobTimeout;
  if (str(vars, 'CI_COMMIT_REF_PROTECTED') === undefined) throw bad('CI_COMMIT_REF_PROTECTED', 'is missing: send "true" or "false"');

  const host = str(vars, 'CI_SERVER_HOST');
  if (host !== undefined) {
    if (!/^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$/.test(host)) throw bad('CI_SERVER_HOST', 'must be a host name, optionally with a port');
    ctx.serverHost = host.toLowerCase();
  }

  const userId = str(vars, 'GITLAB_USER_ID');
  if (userId !== undefined) {
    const user: JobUser = {
      id: id(vars, 'GITLAB_USER_ID', userId),
      login: text('GITLAB_USER_LOGIN', required(vars, 'GITLAB_USER_LOGIN')),
      email: text('GITLAB_USER_EMAIL', required(vars, 'GITLAB_USER_EMAIL')),
    };
    const level = str(vars, 'CI_OIDC_USER_ACCESS_LEVEL');
    if (level !== undefined) user.accessLevel = oneOf('CI_OIDC_USER_ACCESS_LEVEL', level, GITLAB_USER_ACCESS_LEVELS);
    const identities = str(vars, 'CI_OIDC_USER_IDENTITIES');
    if (identities !== undefined) user.identities = parseIdentities(identities);
    ctx.user = user;
  } else {
    for (const dependent of ['GITLAB_USER_LOGIN', 'GITLAB_USER_EMAIL', 'CI_OIDC_USER_ACCESS_LEVEL', 'CI_OIDC_USER_IDENTITIES']) {
      if (str(vars, dependent) !== undefined) throw bad('GITLAB_USER_ID', `is missing although ${dependent} is set`);
    }
  }

  const groups = str(vars, 'CI_OIDC_GROUPS_DIRECT');
  if (groups !== undefined) {
    const value = json('CI_OIDC_GROUPS_DIRECT', groups);
    if (!Array.isArray(value) || value.some((g) => typeof g !== 'string')) throw bad('CI_OIDC_GROUPS_DIRECT', 'must be a JSON array of group paths');
    ctx.groupsDirect = (value as string[]).map((g) => fullPath('CI_OIDC_GROUPS_DIRECT', g));
  }

  const envName = str(vars, 'CI_ENVIRONMENT_NAME');
  if (envName !== undefined) {
    text('CI_ENVIRONMENT_NAME', envName, 255);
    if (!/^[A-Za-z0-9 _./${}-]+$/.test(envName)) throw bad('CI_ENVIRONMENT_NAME', 'may contain only letters, digits, spaces and - _ / $ { } .');
    const environment: JobEnvironment = {
      name: envName,
      protected: bool('CI_OIDC_ENVIRONMENT_PROTECTED', str(vars, 'CI_OIDC_ENVIRONMENT_PROTECTED'), false),
    };
    const tier = str(vars, 'CI_ENVIRONMENT_TIER');
    if (tier !== undefined) environment.tier = oneOf('CI_ENVIRONMENT_TIER', tier, GITLAB_DEPLOYMENT_TIERS);
    const action = str(vars, 'CI_ENVIRONMENT_ACTION');
    if (action !== undefined) environment.action = oneOf('CI_ENVIRONMENT_ACTION', action, GITLAB_ENVIRONMENT_ACTIONS);
    ctx.environment = environment;
  } else {
    for (const dependent of ['CI_ENVIRONMENT_TIER', 'CI_ENVIRONMENT_ACTION', 'CI_OIDC_ENVIRONMENT_PROTECTED']) {
      if (str(vars, dependent) !== undefined) throw bad('CI_ENVIRONMENT_NAME', `is missing although ${dependent} is set`);
    }
  }

  const policyUrl = str(vars, 'CI_OIDC_JOB_CONFIG_URL');
  const policySha = str(vars, 'CI_OIDC_JOB_CONFIG_SHA');
  if (policyUrl !== undefined || policySha !== undefined) {
    if (policyUrl === undefined) throw bad('CI_OIDC_JOB_CONFIG_URL', 'is missing although CI_OIDC_JOB_CONFIG_SHA is set');
    if (policySha === undefined || !SHA.test(policySha)) throw bad('CI_OIDC_JOB_CONFIG_SHA', 'must be the policy file commit SHA');
    if (!/^https:\/\/[^\s]+$/.test(policyUrl)) throw bad('CI_OIDC_JOB_CONFIG_URL', 'must be an https URL');
    ctx.jobConfig = { url: text('CI_OIDC_JOB_CONFIG_URL', policyUrl, 2048), sha: policySha };
  }
  return ctx;
}

function parseIdentities(raw: string): { provider: string; extern_uid: string }[] {
  const value = json('CI_OIDC_USER_IDENTITIES', raw);
  if (!Array.isArray(value) || value.length > 50) throw bad('CI_OIDC_USER_IDENTITIES', 'must be a JSON array of at most 50 {"provider","extern_uid"} objects');
  return value.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw bad('CI_OIDC_USER_IDENTITIES', 'entries must be objects');
    const { provider, extern_uid: externUid, ...rest } = item as Record<string, unknown>;
    if (typeof provider !== 'string' || typeof externUid !== 'string' || Object.keys(rest).length > 0) {
      throw bad('CI_OIDC_USER_IDENTITIES', 'entries must be exactly {"provider": string, "extern_uid": string}');
    }
    return { provider: text('CI_OIDC_USER_IDENTITIES', provider), extern_uid: text('CI_OIDC_USER_IDENTITIES', externUid) };
  });
}

/** Variables a job may reference in `aud` and `jwt_claims`: the job's own, overlaid by the predefined ones. */
export function expansionVariables(predefined: Vars, jobVariables: Vars = {}): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(jobVariables)) if (typeof v === 'string') out.set(k, v);
  for (const [k, v] of Object.entries(predefined)) if (typeof v === 'string') out.set(k, v);
  return out;
}
