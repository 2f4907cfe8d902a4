/**
 * Rendering for people: tables for lists, `key: value` lines for one object. Machine readers use
 * `--json`, which prints the API's answer as is (its field names are the stable interface).
 */

type Json = Record<string, unknown>;

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v === '' ? '-' : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Reads `a.b.c` out of an object. */
export function pick(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Json)[k];
  }
  return cur;
}

export interface Column { title: string; path: string; format?: (v: unknown, row: Json) => string }

export function table(rows: readonly Json[], columns: readonly Column[]): string {
  const cells = rows.map((r) => columns.map((c) => (c.format ? c.format(pick(r, c.path), r) : cell(pick(r, c.path)))));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map((c) => c.title)), ...cells.map(line)].join('\n') + '\n';
}

/** One object as aligned `key: value` lines; nested objects as compact JSON. */
export function details(o: Json): string {
  const keys = Object.keys(o);
  const w = Math.max(0, ...keys.map((k) => k.length));
  return keys.map((k) => `${(k + ':').padEnd(w + 1)} ${cell(o[k])}`).join('\n') + '\n';
}
