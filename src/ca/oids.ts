/** Sigstore extension OIDs (`1.3.6.1.4.1.57264.1.x`), Fulcio `pkg/certificate/extensions.go`. */
export const SIGSTORE_OID_PREFIX = '1.3.6.1.4.1.57264.1.';

export const OID = {
  issuer: '1.3.6.1.4.1.57264.1.1',
  githubWorkflowTrigger: '1.3.6.1.4.1.57264.1.2',
  githubWorkflowSha: '1.3.6.1.4.1.57264.1.3',
  githubWorkflowName: '1.3.6.1.4.1.57264.1.4',
  githubWorkflowRepository: '1.3.6.1.4.1.57264.1.5',
  githubWorkflowRef: '1.3.6.1.4.1.57264.1.6',
  otherName: '1.3.6.1.4.1.57264.1.7',
  issuerV2: '1.3.6.1.4.1.57264.1.8',
  buildSignerUri: '1.3.6.1.4.1.57264.1.9',
  buildSignerDigest: '1.3.6.1.4.1.57264.1.10',
  runnerEnvironment: '1.3.6.1.4.1.57264.1.11',
  sourceRepositoryUri: '1.3.6.1.4.1.57264.1.12',
  sourceRepositoryDigest: '1.3.6.1.4.1.57264.1.13',
  sourceRepositoryRef: '1.3.6.1.4.1.57264.1.14',
  sourceRepositoryIdentifier: '1.3.6.1.4.1.57264.1.15',
  sourceRepositoryOwnerUri: '1.3.6.1.4.1.57264.1.16',
  sourceRepositoryOwnerIdentifier: '1.3.6.1.4.1.57264.1.17',
  buildConfigUri: '1.3.6.1.4.1.57264.1.18',
  buildConfigDigest: '1.3.6.1.4.1.57264.1.19',
  buildTrigger: '1.3.6.1.4.1.57264.1.20',
  runInvocationUri: '1.3.6.1.4.1.57264.1.21',
  sourceRepositoryVisibilityAtSigning: '1.3.6.1.4.1.57264.1.22',
  deploymentEnvironment: '1.3.6.1.4.1.57264.1.23',
  tokenSubject: '1.3.6.1.4.1.57264.1.24',
} as const;

/**
 * Template keys in Fulcio's struct order (`certificate.Extensions`), with the YAML spelling, the Go field
 * name used by JSON configs, the OID, whether the value is raw bytes (.2-.6) and whether it is a URI.
 */
export interface ExtensionField {
  key: ExtensionTemplateKey;
  goName: string;
  oid: string;
  raw: boolean;
  uri: boolean;
}

export const EXTENSION_TEMPLATE_KEYS = [
  'github-workflow-trigger',
  'github-workflow-sha',
  'github-workflow-name',
  'github-workflow-repository',
  'github-workflow-ref',
  'build-signer-uri',
  'build-signer-digest',
  'runner-environment',
  'source-repository-uri',
  'source-repository-digest',
  'source-repository-ref',
  'source-repository-identifier',
  'source-repository-owner-uri',
  'source-repository-owner-identifier',
  'build-config-uri',
  'build-config-digest',
  'build-trigger',
  'run-invocation-uri',
  'source-repository-visibility-at-signing',
  'deployment-environment',
] as const;
export type ExtensionTemplateKey = (typeof EXTENSION_TEMPLATE_KEYS)[number];

const f = (key: ExtensionTemplateKey, goName: string, oid: string, raw = false, uri = false): ExtensionField => ({
  key,
  goName,
  oid,
  raw,
  uri,
});

export const EXTENSION_FIELDS: readonly ExtensionField[] = [
  f('github-workflow-trigger', 'GithubWorkflowTrigger', OID.githubWorkflowTrigger, true),
  f('github-workflow-sha', 'GithubWorkflowSHA', OID.githubWorkflowSha, true),
  f('github-workflow-name', 'GithubWorkflowName', OID.githubWorkflowName, true),
  f('github-workflow-repository', 'GithubWorkflowRepository', OID.githubWorkflowRepository, true),
  f('github-workflow-ref', 'GithubWorkflowRef', OID.githubWorkflowRef, true),
  f('build-signer-uri', 'BuildSignerURI', OID.buildSignerUri, false, true),
  f('build-signer-digest', 'BuildSignerDigest', OID.buildSignerDigest),
  f('runner-environment', 'RunnerEnvironment', OID.runnerEnvironment),
  f('source-repository-uri', 'SourceRepositoryURI', OID.sourceRepositoryUri, false, true),
  f('source-repository-digest', 'SourceRepositoryDigest', OID.sourceRepositoryDigest),
  f('source-repository-ref', 'SourceRepositoryRef', OID.sourceRepositoryRef),
  f('source-repository-identifier', 'SourceRepositoryIdentifier', OID.sourceRepositoryIdentifier),
  f('source-repository-owner-uri', 'SourceRepositoryOwnerURI', OID.sourceRepositoryOwnerUri, false, true),
  f('source-repository-owner-identifier', 'SourceRepositoryOwnerIdentifier', OID.sourceRepositoryOwnerIdentifier),
  f('build-config-uri', 'BuildConfigURI', OID.buildConfigUri, false, true),
  f('build-config-digest', 'BuildConfigDigest', OID.buildConfigDigest),
  f('build-trigger', 'BuildTrigger', OID.buildTrigger),
  f('run-invocation-uri', 'RunInvocationURI', OID.runInvocationUri, false, true),
  f('source-repository-visibility-at-signing', 'SourceRepositoryVisibilityAtSigning', OID.sourceRepositoryVisibilityAtSigning),
  f('deployment-environment', 'DeploymentEnvironment', OID.deploymentEnvironment),
];

export const OID_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
export const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
export const OID_ECDSA_SHA384 = '1.2.840.10045.4.3.3';
export const OID_ECDSA_SHA512 = '1.2.840.10045.4.3.4';
export const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';
export const OID_RSA_SHA384 = '1.2.840.113549.1.1.12';
export const OID_RSA_SHA512 = '1.2.840.113549.1.1.13';
export const OID_ED25519 = '1.3.101.112';
