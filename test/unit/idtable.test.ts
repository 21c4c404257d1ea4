import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { IdTable } from '../../lib/idtable';

/** A run of operations on an IdTable and on a Map, which must agree after each. */
type Op = { op: 'add' } | { op: 'addAt'; key: number } | { op: 'delete'; pick: number } | { op: 'deleteKey'; key: number } |
  { op: 'get'; key: number } | { op: 'clear' };

const ops = fc.array(fc.oneof(
  { weight: 60, arbitrary: fc.constant<Op>({ op: 'add' }) },
  // keys far apart (beyond 32 bits too) and ones near the counter: slots that collide
  { weight: 10, arbitrary: fc.oneof(fc.nat(64), fc.integer({ min: 2 ** 31 - 4, max: 2 ** 31 + 4 }), fc.constantFrom(2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1))
    .map((key): Op => ({ op: 'addAt', key })) },
  { weight: 50, arbitrary: fc.nat().map((pick): Op => ({ op: 'delete', pick })) },
  { weight: 10, arbitrary: fc.oneof(fc.integer({ min: -2, max: 70 }), fc.constantFrom(NaN, 1.5, -0, Infinity)).map((key): Op => ({ op: 'deleteKey', key })) },
  { weight: 20, arbitrary: fc.oneof(fc.integer({ min: -2, max: 300 }), fc.constantFrom(NaN, 0.5)).map((key): Op => ({ op: 'get', key })) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'clear' }) },
), { maxLength: 600 });

describe('IdTable', () => {
  test('agrees with a Map over any run of adds (increasing or arbitrary keys), deletes, lookups and clears', () => {
    fc.assert(fc.property(ops, fc.nat(64), (run, capacity) => {
      const table = new IdTable<{ key: number }>(capacity);
      const model = new Map<number, { key: number }>();
      let next = 1;
      for (const o of run) {
        if (o.op === 'add' || o.op === 'addAt') {
          let key = o.op === 'add' ? next++ : o.key;
          while (model.has(key)) key++;
          const value = { key };
          table.set(key, value);
          model.set(key, value);
        } else if (o.op === 'delete') {
          const keys = [...model.keys()];
          if (keys.length === 0) continue;
          const key = keys[o.pick % keys.length];
          expect(table.delete(key)).toBe(true);
          model.delete(key);
          expect(table.delete(key)).toBe(false);
        } else if (o.op === 'deleteKey') {
          expect(table.delete(o.key)).toBe(model.delete(o.key));
        } else if (o.op === 'get') {
          expect(table.get(o.key)).toBe(model.get(o.key));
          expect(table.has(o.key)).toBe(model.has(o.key));
        } else {
          table.clear();
          model.clear();
        }
        expect(table.size).toBe(model.size);
      }
      const sorted = [...model.keys()].sort((a, b) => a - b);
      expect(table.keys()).toEqual(sorted);
      expect(table.values()).toEqual(sorted.map((k) => model.get(k)));
      for (const k of sorted) expect(table.get(k)).toBe(model.get(k));
    }), { numRuns: 300 });
  });

  test('a call that outlives thousands of later ones is still found, and so are they', () => {
    const table = new IdTable<string>();
    table.set(1, 'long');
    for (let id = 2; id < 5000; id++) {
      table.set(id, `c${id}`);
      if (id >= 10) expect(table.delete(id - 8)).toBe(true);
    }
    expect(table.get(1)).toBe('long');
    expect(table.size).toBe(1 + 8);
    expect(table.keys()).toEqual([1, ...Array.from({ length: 8 }, (_, i) => 4992 + i)]);
  });

  test('capacity follows the live count, not the span of the keys', () => {
    const table = new IdTable<number>();
    for (let id = 1; id <= 1_000_000; id++) {
      table.set(id, id);
      if (id > 16) table.delete(id - 16);
    }
    expect(table.size).toBe(16);
    // 16 live keys: the slot arrays stay at 32 (or 64) entries whatever the keys' span
    expect((table as unknown as { ids: number[] }).ids.length).toBeLessThanOrEqual(64);
  });
});

describe('IdTable and the scavenger', () => {
  // A child with --expose-gc: churn 16 live entries through 10,000 keys, one
  // mark-compact (which moves the table into the old generation), 20,000 more
  // keys, one scavenge; then what is left in the young generation. A Map's
  // replaced tables chain to their successors and keep their values, so the
  // values put in after the mark-compact survive; an IdTable holds 16.
  const survivors = (kind: 'Map' | 'IdTable'): number => {
    const script = `
      const v8 = require('node:v8');
      const { IdTable } = require(${JSON.stringify(require.resolve('../../lib/idtable'))});
      const t = new ${kind}();
      let id = 1;
      const churn = (n) => { for (let i = 0; i < n; i++) { t.set(id, { pad: new Array(100).fill(id) }); if (id > 16) t.delete(id - 16); id++; } };
      churn(10000); gc(); churn(20000); gc({ type: 'minor' });
      console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_used_size);`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    return Number(r.stdout);
  };

  test('values deleted from a churning IdTable do not survive a scavenge after a mark-compact (a Map\'s do)', () => {
    const table = survivors('IdTable');
    const map = survivors('Map');
    // each value is about 1 KB: 16 live ones, and the table's own arrays
    expect(table).toBeLessThan(64 * 1024);
    // the control: the effect the table avoids is there to be measured
    expect(map).toBeGreaterThan(20 * table);
  });
});
