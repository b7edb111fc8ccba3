/**
 * A channel's recovery history: the frames it sent, numbered, so a reconnecting
 * client can be sent what it missed. One SQLite row per batch in a ring of
 * RECOVERY_HISTORY_BATCHES slots: a batch overwrites the oldest slot, one row
 * written per batch and none deleted (rows written are what SQLite storage bills;
 * bench/COST.md). Bytes are bounded too: past RECOVERY_HISTORY_BYTES the oldest rows
 * are deleted. The newest row always stays, so the numbering carries on after an
 * eviction or a deploy.
 */
export interface HistoryBounds {
  /** Rows (batches) kept. */
  maxBatches: number;
  maxBytes: number;
}

/** What appending needs of a row, kept in memory so an append reads nothing. */
interface RowSummary {
  batch: number;
  firstSeq: number;
  count: number;
  bytes: number;
}

export class ChannelHistory {
  private readonly sql: SqlStorage;
  private readonly bounds: HistoryBounds;
  /** Oldest first; loaded on first use. */
  private rows: RowSummary[] | null = null;
  private bytes = 0;

  constructor(sql: SqlStorage, bounds: HistoryBounds) {
    this.sql = sql;
    this.bounds = { maxBatches: Math.max(1, bounds.maxBatches), maxBytes: bounds.maxBytes };
  }

  /** The number of the last frame recorded; 0 before the first. */
  lastSeq(): number {
    const newest = this.summaries().at(-1);
    return newest ? newest.firstSeq + newest.count - 1 : 0;
  }

  /** Records a batch and returns the number of its first frame. */
  append(frames: string[], excluded: (string | null)[], now: number): number {
    const rows = this.summaries();
    const row: RowSummary = {
      batch: (rows.at(-1)?.batch ?? 0) + 1,
      firstSeq: this.lastSeq() + 1,
      count: frames.length,
      bytes: frames.reduce((sum, frame) => sum + frame.length, 0),
    };
    this.sql.exec(
      `INSERT INTO history (slot, batch, first_seq, count, frames, excluded, bytes, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (slot) DO UPDATE SET batch = excluded.batch, first_seq = excluded.first_seq, count = excluded.count,
         frames = excluded.frames, excluded = excluded.excluded, bytes = excluded.bytes, at = excluded.at`,
      row.batch % this.bounds.maxBatches,
      row.batch,
      row.firstSeq,
      row.count,
      JSON.stringify(frames),
      JSON.stringify(excluded),
      row.bytes,
      now,
    );
    rows.push(row);
    this.bytes += row.bytes;
    // The slot just written held the batch maxBatches ago.
    while (rows.length > 0 && rows[0]!.batch <= row.batch - this.bounds.maxBatches) this.bytes -= rows.shift()!.bytes;
    this.trimBytes();
    return row.firstSeq;
  }

  /**
   * The frames after `position` not excluded for `socketId`, oldest first; null when
   * the history no longer reaches back to the frame after `position`, or `position`
   * is one this channel never numbered.
   */
  since(position: number, socketId: string): { frames: string[]; seqs: number[] } | null {
    const last = this.lastSeq();
    if (position > last || position < 0) return null;
    const result = { frames: [] as string[], seqs: [] as number[] };
    if (position === last) return result;
    const oldest = this.summaries()[0];
    if (!oldest || oldest.firstSeq > position + 1) return null;
    const rows = this.sql.exec<{ first_seq: number; frames: string; excluded: string }>(
      "SELECT first_seq, frames, excluded FROM history WHERE first_seq + count - 1 > ? ORDER BY batch",
      position,
    );
    for (const row of rows) {
      const excluded = JSON.parse(row.excluded) as (string | null)[];
      (JSON.parse(row.frames) as string[]).forEach((frame, i) => {
        const seq = row.first_seq + i;
        if (seq <= position || excluded[i] === socketId) return;
        result.frames.push(frame);
        result.seqs.push(seq);
      });
    }
    return result;
  }

  /** Deletes the oldest rows while the history holds more than maxBytes, never the newest. */
  private trimBytes(): void {
    const rows = this.summaries();
    let drop = 0;
    while (drop < rows.length - 1 && this.bytes > this.bounds.maxBytes) this.bytes -= rows[drop++]!.bytes;
    if (drop === 0) return;
    this.sql.exec("DELETE FROM history WHERE batch < ?", rows[drop]!.batch);
    rows.splice(0, drop);
  }

  private summaries(): RowSummary[] {
    if (this.rows) return this.rows;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS history (
      slot INTEGER PRIMARY KEY,
      batch INTEGER NOT NULL,
      first_seq INTEGER NOT NULL,
      count INTEGER NOT NULL,
      frames TEXT NOT NULL,
      excluded TEXT NOT NULL,
      bytes INTEGER NOT NULL,
      at INTEGER NOT NULL
    )`);
    this.rows = this.sql
      .exec<{ batch: number; first_seq: number; count: number; bytes: number }>("SELECT batch, first_seq, count, bytes FROM history ORDER BY batch")
      .toArray()
      .map((row) => ({ batch: row.batch, firstSeq: row.first_seq, count: row.count, bytes: row.bytes }));
    const newest = this.rows.at(-1);
    // A smaller ring after a configuration change leaves older slots behind: they are history no longer.
    if (newest) this.rows = this.rows.filter((row) => row.batch > newest.batch - this.bounds.maxBatches);
    this.bytes = this.rows.reduce((sum, row) => sum + row.bytes, 0);
    return this.rows;
  }
}
