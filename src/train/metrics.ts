// metrics: one JSON object per line (JSONL), appended as the run goes, so a crash loses at most the
// line being written and any tool (jq, pandas) can read the file. On --resume the lines after the
// checkpoint's position are dropped first: those steps run again and must not appear twice.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from './checkpoint.js';

export type MetricRecord = Record<string, unknown> & { phase: string };

export class MetricsLog {
  readonly path: string;
  readonly records: MetricRecord[] = [];

  /** A new log (the file is created, or emptied). */
  constructor(path: string, opts: { keep?: number } = {}) {
    this.path = path;
    const old = existsSync(path) ? readMetrics(path) : [];
    // keep: how many records of the previous run to keep (a resumed run's records up to its checkpoint)
    const keep = opts.keep ?? 0;
    if (keep > old.length) throw new Error(`metrics: ${path} has ${old.length} records, the checkpoint expects at least ${keep}`);
    this.records.push(...old.slice(0, keep));
    writeFileAtomic(path, this.records.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  append(r: MetricRecord): void {
    this.records.push(r);
    appendFileSync(this.path, JSON.stringify(r) + '\n');
  }
}

export function readMetrics(path: string): MetricRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as MetricRecord);
}
