import { issuerError } from './errors.ts';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads CI variables from a JSON object of strings or a .env file (KEY=VALUE, optional quotes, `export`). */
export function parseVarsFile(text: string, file: string): Record<string, string> {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      throw issuerError('request_invalid', `${file}: not valid JSON`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw issuerError('request_invalid', `${file}: must be a JSON object of variable names to strings`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) {
      if (!NAME.test(k)) throw issuerError('request_invalid', `${file}: ${JSON.stringify(k)} is not a variable name`);
      if (typeof v === 'string') out[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else throw issuerError('request_invalid', `${file}: ${k} must be a string`);
    }
    return out;
  }
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw issuerError('request_invalid', `${file}:${String(i + 1)}: expected KEY=VALUE`);
    let value = m[2]!;
    if (/^"(.*)"$/.test(value)) value = JSON.parse(value) as string;
    else if (/^'(.*)'$/.test(value)) value = value.slice(1, -1);
    else value = value.replace(/\s+#.*$/, '');
    out[m[1]!] = value;
  });
  return out;
}
