// Stands in for `twine upload --repository-url URL FILES`: posts to the package index with the
// credentials twine reads from TWINE_USERNAME / TWINE_PASSWORD, and fails when the index refuses.
const args = process.argv.slice(2);
if (args[0] !== 'upload') {
  process.stderr.write('twine shim: only "upload" is supported\n');
  process.exit(2);
}
const i = args.indexOf('--repository-url');
const url = i >= 0 ? args[i + 1] : undefined;
const user = process.env.TWINE_USERNAME;
const password = process.env.TWINE_PASSWORD;
if (!url || !user || !password) {
  process.stderr.write('twine shim: --repository-url, TWINE_USERNAME and TWINE_PASSWORD are required\n');
  process.exit(2);
}
const res = await fetch(url, {
  method: 'POST',
  headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
  body: 'package upload',
});
const text = await res.text();
if (res.status !== 200) {
  process.stderr.write(`HTTPError: ${res.status} from ${url}: ${text}\n`);
  process.exit(1);
}
process.stdout.write(`Uploading distributions to ${url}\n${text}\n`);
