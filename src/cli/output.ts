/** Shared CLI conventions: JSON on --json or when stdout is not a terminal-friendly value, colour only on a TTY. */

export class CliError extends Error {
  readonly exitCode: number;
  readonly code: string;

  constructor(code: string, message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Documented exit codes (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The operation ran and said no (denied, invalid token, verification failed). */
  rejected: 1,
  /** Bad usage or a malformed input file / configuration. */
  usage: 2,
  /** Could not reach a server or the store. */
  unavailable: 3,
} as const;

const useColour = (): boolean => !!process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

export function colour(code: 'red' | 'green' | 'yellow' | 'bold' | 'dim', text: string): string {
  if (!useColour()) return text;
  const codes = { red: 31, green: 32, yellow: 33, bold: 1, dim: 2 } as const;
  return `\u001b[${codes[code]}m${text}\u001b[0m`;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Progress for long operations goes to stderr, and only on a terminal, so pipes stay clean. */
export function progress(message: string): void {
  if (process.stderr.isTTY) process.stderr.write(colour('dim', message) + '\n');
}
