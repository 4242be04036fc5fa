import type { FailureKind } from '../errors.ts';

/**
 * AWS STS Query API, AssumeRoleWithWebIdentity only (policy.md §12.3). Responses are XML in the
 * `https://sts.amazonaws.com/doc/2011-06-15/` namespace so unmodified AWS SDKs parse them.
 */
export const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';
export const STS_VERSION = '2011-06-15';

export interface StsRequest {
  roleArn: string;
  roleSessionName: string;
  webIdentityToken: string;
  durationSeconds: number | undefined;
  policy: string | undefined;
  policyArns: string[];
}

export class StsError extends Error {
  constructor(
    readonly code: string,
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = 'StsError';
  }
}

const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const ARN = /^arn:[\w+=/,.@:-]{16,2044}$/;

/** Validates the form parameters exactly as STS bounds them; the first violation wins. */
export function parseStsForm(form: Record<string, string | string[] | undefined>): StsRequest {
  const one = (name: string): string | undefined => {
    const v = form[name];
    if (Array.isArray(v)) throw new StsError('InvalidParameterValue', 400, `Parameter ${name} was given more than once`);
    return v;
  };
  const action = one('Action');
  if (action !== 'AssumeRoleWithWebIdentity') {
    throw new StsError('InvalidAction', 400, `Could not find operation ${action ?? '(none)'} for version ${one('Version') ?? '(none)'}`);
  }
  const version = one('Version');
  if (version !== STS_VERSION) throw new StsError('InvalidParameterValue', 400, `Version must be ${STS_VERSION}`);
  const missing = (name: string): never => {
    throw new StsError('MissingParameter', 400, `The request must contain the parameter ${name}`);
  };
  const roleArn = one('RoleArn') ?? missing('RoleArn');
  const roleSessionName = one('RoleSessionName') ?? missing('RoleSessionName');
  const webIdentityToken = one('WebIdentityToken') ?? missing('WebIdentityToken');
  if (roleArn.length < 20 || roleArn.length > 2048 || !ARN.test(roleArn)) {
    throw new StsError('ValidationError', 400, "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: must be a valid ARN of 20 to 2048 characters");
  }
  if (!SESSION_NAME.test(roleSessionName)) {
    throw new StsError('ValidationError', 400, "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length 2 to 64");
  }
  if (webIdentityToken.length < 4 || webIdentityToken.length > 20000) {
    throw new StsError('ValidationError', 400, "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000");
  }
  if (one('ProviderId') !== undefined) {
    throw new StsError('InvalidParameterValue', 400, 'ProviderId must be absent for OpenID Connect identity tokens');
  }
  let durationSeconds: number | undefined;
  const d = one('DurationSeconds');
  if (d !== undefined) {
    if (!/^[0-9]{1,6}$/.test(d) || Number(d) < 900 || Number(d) > 43200) {
      throw new StsError('ValidationError', 400, "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200");
    }
    durationSeconds = Number(d);
  }
  const policy = one('Policy');
  if (policy !== undefined && (policy.length < 1 || policy.length > 2048)) {
    throw new StsError('ValidationError', 400, "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length between 1 and 2048");
  }
  const policyArns: string[] = [];
  for (let i = 1; i <= 11; i++) {
    const arn = one(`PolicyArns.member.${i}.arn`);
    if (arn === undefined) break;
    if (i > 10) throw new StsError('ValidationError', 400, "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10");
    if (!ARN.test(arn)) throw new StsError('ValidationError', 400, `Value at 'policyArns.${i}.arn' is not a valid ARN`);
    policyArns.push(arn);
  }
  return { roleArn, roleSessionName, webIdentityToken, durationSeconds, policy, policyArns };
}

export function xmlEscape(value: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are not allowed in XML 1.0 and are dropped
  return value.replace(/[<>&'"\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) => {
    switch (c) {
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '&':
        return '&amp;';
      case "'":
        return '&apos;';
      case '"':
        return '&quot;';
      default:
        return '';
    }
  });
}

export interface StsSuccess {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: number;
  subject: string;
  audience: string;
  provider: string;
  assumedRoleArn: string;
  assumedRoleId: string;
  packedPolicySize: number | undefined;
  sourceIdentity: string | undefined;
  requestId: string;
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function stsSuccessXml(r: StsSuccess): string {
  const e = xmlEscape;
  return (
    `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NAMESPACE}">\n` +
    '  <AssumeRoleWithWebIdentityResult>\n' +
    `    <SubjectFromWebIdentityToken>${e(r.subject)}</SubjectFromWebIdentityToken>\n` +
    `    <Audience>${e(r.audience)}</Audience>\n` +
    `    <AssumedRoleUser>\n      <Arn>${e(r.assumedRoleArn)}</Arn>\n      <AssumedRoleId>${e(r.assumedRoleId)}</AssumedRoleId>\n    </AssumedRoleUser>\n` +
    '    <Credentials>\n' +
    `      <SessionToken>${e(r.sessionToken)}</SessionToken>\n` +
    `      <SecretAccessKey>${e(r.secretAccessKey)}</SecretAccessKey>\n` +
    `      <Expiration>${iso(r.expiration)}</Expiration>\n` +
    `      <AccessKeyId>${e(r.accessKeyId)}</AccessKeyId>\n` +
    '    </Credentials>\n' +
    (r.sourceIdentity === undefined ? '' : `    <SourceIdentity>${e(r.sourceIdentity)}</SourceIdentity>\n`) +
    `    <Provider>${e(r.provider)}</Provider>\n` +
    (r.packedPolicySize === undefined ? '' : `    <PackedPolicySize>${r.packedPolicySize}</PackedPolicySize>\n`) +
    '  </AssumeRoleWithWebIdentityResult>\n' +
    `  <ResponseMetadata>\n    <RequestId>${e(r.requestId)}</RequestId>\n  </ResponseMetadata>\n` +
    '</AssumeRoleWithWebIdentityResponse>\n'
  );
}

export function stsErrorXml(code: string, message: string, requestId: string): string {
  const e = xmlEscape;
  return (
    `<ErrorResponse xmlns="${STS_NAMESPACE}">\n` +
    `  <Error>\n    <Type>Sender</Type>\n    <Code>${e(code)}</Code>\n    <Message>${e(message)}</Message>\n  </Error>\n` +
    `  <RequestId>${e(requestId)}</RequestId>\n` +
    '</ErrorResponse>\n'
  );
}

/** AWS error code, HTTP status and AWS's own message text for a broker failure. */
export function stsErrorFor(kind: FailureKind, code: string): StsError {
  switch (kind) {
    case 'rate_limited':
      return new StsError('Throttling', 400, 'Rate exceeded');
    case 'token_expired':
      return new StsError('ExpiredTokenException', 400, 'Token expired: current date/time is past the token expiry');
    case 'idp_unavailable':
      return new StsError('IDPCommunicationError', 400, "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements");
    case 'token_malformed':
    case 'issuer_unknown':
    case 'token_invalid':
      return new StsError('InvalidIdentityToken', 400, `The web identity token that was passed could not be validated (${code})`);
    case 'replayed':
      return new StsError('InvalidIdentityToken', 400, 'The web identity token that was passed has already been used (replayed)');
    case 'bad_request':
      return new StsError('ValidationError', 400, `The request is invalid (${code})`);
    case 'internal':
      return new StsError('ServiceUnavailable', 503, 'Service is unable to handle request');
    case 'not_enabled':
      return new StsError('RegionDisabledException', 403, 'STS is not activated for this endpoint');
    default:
      return new StsError('AccessDenied', 403, 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
  }
}
