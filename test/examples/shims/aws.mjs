// Stands in for the AWS CLI's `aws sts assume-role-with-web-identity` in the examples, using the real
// AWS SDK STS client (@aws-sdk/client-sts) against the endpoint the example names.
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';

const args = process.argv.slice(2);
if (args[0] !== 'sts' || args[1] !== 'assume-role-with-web-identity') {
  process.stderr.write(`aws shim: only "sts assume-role-with-web-identity" is supported, got: ${args.slice(0, 2).join(' ')}\n`);
  process.exit(2);
}
const opt = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const client = new STSClient({
  region: 'us-east-1',
  endpoint: opt('endpoint-url'),
  // AssumeRoleWithWebIdentity is unsigned; the SDK still wants a credential object.
  credentials: { accessKeyId: 'anonymous', secretAccessKey: 'anonymous' },
  maxAttempts: 1,
});
try {
  const out = await client.send(
    new AssumeRoleWithWebIdentityCommand({
      RoleArn: opt('role-arn'),
      RoleSessionName: opt('role-session-name'),
      WebIdentityToken: opt('web-identity-token'),
      ...(opt('duration-seconds') ? { DurationSeconds: Number(opt('duration-seconds')) } : {}),
    }),
  );
  const result = opt('query') === 'Credentials' ? out.Credentials : out;
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} catch (err) {
  process.stderr.write(`An error occurred (${err.name}) when calling the AssumeRoleWithWebIdentity operation: ${err.message}\n`);
  process.exit(254);
}
