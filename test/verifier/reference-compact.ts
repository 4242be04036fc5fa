import { CompactJwsError } from '../../src/jose/compact.ts';

/**
 * Steps 1–2 as plainly as they can be written, independent of the production parser: each segment must
 * be the exact base64url spelling Node gives back for its own decoding (re-encoding proves canonical
 * form and alphabet). Property tests hold `parseCompactJws` to the same verdicts and payload bytes.
 */
export function referenceSteps12(token: unknown, maxTokenLength = 20000, maxPayloadBytes = 16384): { headerSegment: string; payloadBytes: Buffer } {
  if (typeof token !== 'string') throw new CompactJwsError('token_malformed', 'not a string');
  if (token.length > maxTokenLength) throw new CompactJwsError('token_too_large', 'too long');
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] === '' || parts[2] === '') throw new CompactJwsError('token_malformed', 'not three segments');
  const [headerSegment, payload, signature] = parts as [string, string, string];
  if (Math.floor((payload.length * 3) / 4) > maxPayloadBytes) throw new CompactJwsError('token_malformed', 'payload too large');
  const decode = (segment: string): Buffer => {
    const bytes = Buffer.from(segment, 'base64url');
    if (bytes.toString('base64url') !== segment) throw new CompactJwsError('token_malformed', 'not canonical base64url');
    return bytes;
  };
  decode(signature);
  return { headerSegment, payloadBytes: decode(payload) };
}
