/**
 * The subset of Go's text/template that Fulcio's `ci-provider` metadata uses, evaluated with
 * `missingkey=error` over a `map[string]string` and no HTML escaping: text, `{{ .name }}`,
 * `{{ index . "dotted.name" }}`, parentheses, `eq`/`ne`/`not`/`and`/`or`, `if`/`else if`/`else`/`end`,
 * `{{- -}}` trimming and comments. Error texts reproduce Go's so that 400 answers match Fulcio's.
 */

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** `missingkey=error` fired: the template read a claim that is neither in the token nor a default. */
export class MissingKeyError extends TemplateError {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
    this.name = 'MissingKeyError';
  }
}

type Expr =
  | { kind: 'dot'; pos: number }
  | { kind: 'field'; name: string; pos: number }
  | { kind: 'string'; value: string; pos: number }
  | { kind: 'bool'; value: boolean; pos: number }
  | { kind: 'call'; fn: string; args: Expr[]; pos: number };

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; expr: Expr; pos: number }
  | { kind: 'if'; cond: Expr; then: Node[]; else: Node[] };

export interface ParsedTemplate {
  readonly source: string;
  readonly nodes: Node[];
}

const FUNCS = new Set(['eq', 'ne', 'not', 'and', 'or', 'index']);

interface Tok {
  t: 'dot' | 'field' | 'ident' | 'string' | 'lparen' | 'rparen';
  v: string;
  pos: number;
}

function unquote(raw: string, pos: number): string {
  if (raw.startsWith('`')) return raw.slice(1, -1);
  let out = '';
  for (let i = 1; i < raw.length - 1; i++) {
    const c = raw[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = raw[++i];
    const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'" };
    if (n === undefined || map[n] === undefined) throw new TemplateError(`template: :1: unsupported escape in string at ${pos}`);
    out += map[n];
  }
  return out;
}

function lexAction(src: string, start: number, end: number): Tok[] {
  const toks: Tok[] = [];
  let i = start;
  while (i < end) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(') {
      toks.push({ t: 'lparen', v: c, pos: i++ });
    } else if (c === ')') {
      toks.push({ t: 'rparen', v: c, pos: i++ });
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < end && src[j] !== c) j += src[j] === '\\' && c === '"' ? 2 : 1;
      if (j >= end) throw new TemplateError(`template: :1: unterminated quoted string`);
      toks.push({ t: 'string', v: unquote(src.slice(i, j + 1), i), pos: i });
      i = j + 1;
    } else if (c === '.') {
      let j = i + 1;
      while (j < end && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      if (j === i + 1) toks.push({ t: 'dot', v: '.', pos: i });
      else {
        if (src[j] === '.') throw new TemplateError(`template: :1: chained fields are not supported: ${src.slice(i, end)}`);
        toks.push({ t: 'field', v: src.slice(i + 1, j), pos: i });
      }
      i = j;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < end && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      toks.push({ t: 'ident', v: src.slice(i, j), pos: i });
      i = j;
    } else {
      throw new TemplateError(`template: :1: unexpected "${c}" in command`);
    }
  }
  return toks;
}

class ExprParser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  done(): boolean {
    return this.i >= this.toks.length;
  }

  /** A command: an operand, or a function name followed by operands. */
  command(stopAtParen: boolean): Expr {
    const first = this.toks[this.i];
    if (!first) throw new TemplateError('template: :1: missing value for command');
    if (first.t === 'ident' && FUNCS.has(first.v)) {
      this.i++;
      const args: Expr[] = [];
      while (this.i < this.toks.length && !(stopAtParen && this.toks[this.i]!.t === 'rparen')) {
        args.push(this.operand());
      }
      return { kind: 'call', fn: first.v, args, pos: first.pos };
    }
    const op = this.operand();
    if (!this.done() && !(stopAtParen && this.toks[this.i]!.t === 'rparen')) {
      throw new TemplateError(`template: :1: unexpected ${this.toks[this.i]!.v} in operand`);
    }
    return op;
  }

  operand(): Expr {
    const t = this.toks[this.i++];
    if (!t) throw new TemplateError('template: :1: missing operand');
    switch (t.t) {
      case 'dot':
        return { kind: 'dot', pos: t.pos };
      case 'field':
        return { kind: 'field', name: t.v, pos: t.pos };
      case 'string':
        return { kind: 'string', value: t.v, pos: t.pos };
      case 'lparen': {
        const inner = this.command(true);
        const close = this.toks[this.i++];
        if (!close || close.t !== 'rparen') throw new TemplateError('template: :1: unclosed left paren');
        return inner;
      }
      case 'ident':
        if (t.v === 'true' || t.v === 'false') return { kind: 'bool', value: t.v === 'true', pos: t.pos };
        throw new TemplateError(`template: :1: function "${t.v}" not defined`);
      default:
        throw new TemplateError(`template: :1: unexpected "${t.v}" in operand`);
    }
  }
}

interface RawAction {
  kind: 'action';
  start: number;
  end: number;
}

/** Parses a template. Throws TemplateError at load time for anything outside the supported subset. */
export function parseTemplate(source: string): ParsedTemplate {
  // Split into text and actions, applying {{- and -}} trimming.
  const parts: Array<{ kind: 'text'; text: string } | RawAction> = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open === -1) {
      parts.push({ kind: 'text', text: source.slice(i) });
      break;
    }
    let text = source.slice(i, open);
    let start = open + 2;
    if (source[start] === '-' && /[ \t\r\n]/.test(source[start + 1] ?? '')) {
      text = text.replace(/[ \t\r\n]+$/, '');
      start += 1;
    }
    if (text) parts.push({ kind: 'text', text });
    const close = source.indexOf('}}', start);
    if (close === -1) throw new TemplateError('template: :1: unclosed action');
    let end = close;
    let next = close + 2;
    if (source[close - 1] === '-' && /[ \t\r\n]/.test(source[close - 2] ?? '')) {
      end = close - 1;
      const m = /^[ \t\r\n]*/.exec(source.slice(next));
      next += m ? m[0].length : 0;
    }
    const inner = source.slice(start, end).trim();
    if (!(inner.startsWith('/*') && inner.endsWith('*/'))) parts.push({ kind: 'action', start, end });
    i = next;
  }

  let p = 0;
  const parseList = (terminators: Set<string>): { nodes: Node[]; term: string } => {
    const nodes: Node[] = [];
    while (p < parts.length) {
      const part = parts[p++]!;
      if (part.kind === 'text') {
        nodes.push({ kind: 'text', text: part.text });
        continue;
      }
      const toks = lexAction(source, part.start, part.end);
      if (toks.length === 0) throw new TemplateError('template: :1: missing value for command');
      const head = toks[0]!;
      if (head.t === 'ident' && (head.v === 'end' || head.v === 'else')) {
        if (!terminators.has(head.v)) throw new TemplateError(`template: :1: unexpected {{${head.v}}}`);
        if (head.v === 'end' && toks.length > 1) throw new TemplateError('template: :1: unexpected token in end');
        if (head.v === 'else' && toks.length > 1) {
          const second = toks[1]!;
          if (!(second.t === 'ident' && second.v === 'if')) throw new TemplateError('template: :1: unexpected token in else');
          // `else if` re-enters as a nested if whose end closes both.
          p--;
          parts[p] = { kind: 'action', start: second.pos, end: part.end };
          return { nodes, term: 'elseif' };
        }
        return { nodes, term: head.v };
      }
      if (head.t === 'ident' && head.v === 'if') {
        nodes.push(parseIf(toks.slice(1)));
        continue;
      }
      const ep = new ExprParser(toks);
      const expr = ep.command(false);
      if (!ep.done()) throw new TemplateError('template: :1: unexpected token in command');
      nodes.push({ kind: 'action', expr, pos: head.pos });
    }
    if (terminators.size > 0) throw new TemplateError('template: :1: unexpected EOF');
    return { nodes, term: '' };
  };
  const parseIf = (condToks: Tok[]): Node => {
    if (condToks.length === 0) throw new TemplateError('template: :1: missing value for if');
    const ep = new ExprParser(condToks);
    const cond = ep.command(false);
    if (!ep.done()) throw new TemplateError('template: :1: unexpected token in if');
    const thenPart = parseList(new Set(['else', 'end']));
    if (thenPart.term === 'end') return { kind: 'if', cond, then: thenPart.nodes, else: [] };
    if (thenPart.term === 'elseif') {
      const nested = parts[p++] as RawAction;
      const toks = lexAction(source, nested.start, nested.end);
      // toks[0] is `if`; the nested if consumes the shared `end`.
      return { kind: 'if', cond, then: thenPart.nodes, else: [parseIf(toks.slice(1))] };
    }
    const elsePart = parseList(new Set(['end']));
    return { kind: 'if', cond, then: thenPart.nodes, else: elsePart.nodes };
  };

  const { nodes } = parseList(new Set());
  return { source, nodes };
}

type Value = string | boolean | { dot: true };

export interface EvalOptions {
  /** Called on each value printed by an action (not on literal text). Returns the text to emit. */
  escape?: (value: string) => string;
}

function location(src: string, pos: number): string {
  const text = src.slice(0, pos);
  const nl = text.lastIndexOf('\n');
  const line = 1 + (text.match(/\n/g)?.length ?? 0);
  const col = nl === -1 ? pos : pos - (nl + 1);
  return `:${line}:${col}`;
}

function exprString(e: Expr): string {
  switch (e.kind) {
    case 'dot':
      return '.';
    case 'field':
      return `.${e.name}`;
    case 'string':
      return JSON.stringify(e.value);
    case 'bool':
      return String(e.value);
    case 'call':
      return [e.fn, ...e.args.map((a) => (a.kind === 'call' ? `(${exprString(a)})` : exprString(a)))].join(' ');
  }
}

function truthy(v: Value): boolean {
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'boolean') return v;
  return true;
}

interface ExecState {
  tpl: ParsedTemplate;
  data: ReadonlyMap<string, string>;
  escape: ((value: string) => string) | undefined;
}

// Module-level functions rather than per-call closures: this runs ~20 times per certificate.
function fail(st: ExecState, node: Expr, msg: string, missingKey?: string): never {
  const text = `template: ${location(st.tpl.source, node.pos)}: executing "" at <${exprString(node)}>: ${msg}`;
  throw missingKey === undefined ? new TemplateError(text) : new MissingKeyError(text, missingKey);
}

function evalCall(st: ExecState, e: Extract<Expr, { kind: 'call' }>): Value {
  if (e.fn === 'and' || e.fn === 'or') {
    let last: Value = e.fn === 'and';
    for (const a of e.args) {
      last = evalExpr(st, a);
      if (truthy(last) !== (e.fn === 'and')) return last;
    }
    return last;
  }
  const args: Value[] = [];
  for (const a of e.args) args.push(evalExpr(st, a));
  switch (e.fn) {
    case 'index': {
      if (args.length !== 2) return fail(st, e, `wrong number of args for index: want 2 got ${args.length}`);
      const base = args[0]!;
      const key = args[1]!;
      if (typeof base !== 'object') return fail(st, e, 'error calling index: cannot index a string');
      if (typeof key !== 'string') return fail(st, e, 'error calling index: value has type bool; should be string');
      // Go's index on a map yields the zero value for a missing key, even with missingkey=error.
      return st.data.get(key) ?? '';
    }
    case 'eq':
    case 'ne': {
      if (args.length < 2) return fail(st, e, 'missing argument for comparison');
      const a = args[0]!;
      let eq = false;
      for (let i = 1; i < args.length; i++) {
        const r = args[i]!;
        if (typeof a === 'object' || typeof r === 'object') return fail(st, e, `error calling ${e.fn}: invalid type for comparison`);
        if (typeof r !== typeof a) return fail(st, e, `error calling ${e.fn}: incompatible types for comparison`);
        if (r === a) eq = true;
      }
      return e.fn === 'eq' ? eq : !eq;
    }
    case 'not':
      if (args.length !== 1) return fail(st, e, `wrong number of args for not: want 1 got ${args.length}`);
      return !truthy(args[0]!);
  }
  return fail(st, e, `function "${e.fn}" not defined`);
}

function evalExpr(st: ExecState, e: Expr): Value {
  switch (e.kind) {
    case 'dot':
      return DOT;
    case 'string':
    case 'bool':
      return e.value;
    case 'field': {
      const v = st.data.get(e.name);
      if (v === undefined) return fail(st, e, `map has no entry for key "${e.name}"`, e.name);
      return v;
    }
    case 'call':
      return evalCall(st, e);
  }
}

const DOT: Value = { dot: true };

function runNodes(st: ExecState, nodes: Node[]): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'if') out += runNodes(st, truthy(evalExpr(st, n.cond)) ? n.then : n.else);
    else {
      const v = evalExpr(st, n.expr);
      const s = typeof v === 'string' ? v : typeof v === 'boolean' ? String(v) : fail(st, n.expr, 'cannot print the template data');
      out += st.escape ? st.escape(s) : s;
    }
  }
  return out;
}

/** Executes a parsed template over `data` (claims merged over defaults). */
export function executeTemplate(tpl: ParsedTemplate, data: ReadonlyMap<string, string>, opts: EvalOptions = {}): string {
  return runNodes({ tpl, data, escape: opts.escape }, tpl.nodes);
}

/** True when Fulcio treats the string as a Go template rather than a bare claim name. */
export function isTemplate(s: string): boolean {
  return s.includes('{{');
}
