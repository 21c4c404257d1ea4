/** Output for people (hex dumps, durations, aligned columns) and for scripts (JSON). */
import { performance } from 'node:perf_hooks';

/** A hex dump in the style of `hexdump -C`: offset, 16 bytes, their printable characters. */
export function hexDump(bytes: Uint8Array): string {
  if (bytes.length === 0) return '(empty)\n';
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const text = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${at.toString(16).padStart(8, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${text}|`);
  }
  return `${lines.join('\n')}\n`;
}

/** Milliseconds for people: 0.84 ms, 12.3 ms, 1534 ms. */
export function ms(value: number): string {
  if (value < 10) return `${value.toFixed(2)} ms`;
  if (value < 100) return `${value.toFixed(1)} ms`;
  return `${Math.round(value)} ms`;
}

/** Milliseconds since `start` (performance.now()), to the microsecond. */
export function elapsed(start: number): number {
  return Math.round((performance.now() - start) * 1000) / 1000;
}

/** An abort code with its name: "-5 (RX_PROTOCOL_ERROR)". */
export function codeWithName(code: number, name: string | undefined): string {
  return name ? `${code} (${name})` : String(code);
}

/** A 32-bit word as 0x%08x. */
export function word(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * JSON for scripts: bytes become hex strings, bigints decimal strings (a
 * double cannot hold every 64-bit value), Maps objects.
 */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
    if (v instanceof Map) return Object.fromEntries(v);
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      // Buffer.prototype.toJSON has already run: turn it back into hex.
      return Buffer.from((v as { data: number[] }).data).toString('hex');
    }
    return v;
  }, indent);
}

/** Rows of cells in aligned columns (the last column is not padded). */
export function columns(rows: string[][], indent = ''): string {
  if (rows.length === 0) return '';
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => `${indent}${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}`.trimEnd()).join('\n') + '\n';
}

/** "a 3, b 1" from counts, largest first. */
export function counts(record: Record<string, number>): string {
  const entries = Object.entries(record).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return entries.length ? entries.map(([k, n]) => `${k} ${n}`).join(', ') : 'none';
}

/** Minimum, median and maximum. */
export function spread(values: readonly number[]): { min: number; median: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { min: s[0], median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, max: s[s.length - 1] };
}
