/**
 * A channel's recovery history: the frames it sent, numbered, for as long as a lost
 * connection may come back for them (RECOVERY_WINDOW), within a count of frames and
 * bytes. One SQLite row per batch, written when the batch is accepted; the newest row
 * is never trimmed, so the numbering carries on after an eviction or a deploy.
 */
import type { NumberedFrames } from "./delivery.ts";

export interface HistoryBounds {
  windowMs: number;
  maxFrames: number;
  maxBytes: number;
}

/** What trimming needs of a row, kept in memory so appends read nothing. */
interface RowSummary {
  firstSeq: number;
  count: number;
  bytes: number;
  at: number;
}

export class ChannelHistory {
  private readonly sql: SqlStorage;
  private readonly bounds: HistoryBounds;
  /** Oldest first; loaded on first use. */
  private rows: RowSummary[] | null = null;
  private frames = 0;
  private bytes = 0;

  constructor(sql: SqlStorage, bounds: HistoryBounds) {
    this.sql = sql;
    this.bounds = bounds;
  }

  /** The number of the last frame recorded; 0 before the first. */
  lastSeq(): number {
    const newest = this.summaries().at(-1);
    return newest ? newest.firstSeq + newest.count - 1 : 0;
  }

  /** Records a batch and returns the number of its first frame. */
  append(frames: string[], excluded: (string | null)[], now: number): number {
    const firstSeq = this.lastSeq() + 1;
    const bytes = frames.reduce((sum, frame) => sum + frame.length, 0);
    this.sql.exec(
      "INSERT INTO history (first_seq, count, frames, excluded, bytes, at) VALUES (?, ?, ?, ?, ?, ?)",
      firstSeq,
      frames.length,
      JSON.stringify(frames),
      JSON.stringify(excluded),
      bytes,
      now,
    );
    this.summaries().push({ firstSeq, count: frames.length, bytes, at: now });
    this.frames += frames.length;
    this.bytes += bytes;
    this.trim(now);
    return firstSeq;
  }

  /**
   * The frames after `position` not excluded for `socketId`, oldest first; null when
   * the history no longer reaches back to the frame after `position`, or `position`
   * is one this channel never numbered.
   */
  since(position: number, socketId: string): NumberedFrames | null {
    const last = this.lastSeq();
    if (position > last) return null;
    if (position === last) return { frames: [], seqs: [] };
    const oldest = this.summaries()[0];
    if (!oldest || oldest.firstSeq > position + 1) return null;
    const result = { frames: [] as string[], seqs: [] as number[] };
    const rows = this.sql.exec<{ first_seq: number; frames: string; excluded: string }>(
      "SELECT first_seq, frames, excluded FROM history WHERE first_seq + count - 1 > ? ORDER BY first_seq",
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

  /** Drops the oldest rows past the window or the bounds, never the newest. */
  private trim(now: number): void {
    const rows = this.summaries();
    const { windowMs, maxFrames, maxBytes } = this.bounds;
    let drop = 0;
    while (drop < rows.length - 1) {
      const oldest = rows[drop]!;
      if (oldest.at >= now - windowMs && this.frames <= maxFrames && this.bytes <= maxBytes) break;
      this.frames -= oldest.count;
      this.bytes -= oldest.bytes;
      drop++;
    }
    if (drop === 0) return;
    this.sql.exec("DELETE FROM history WHERE first_seq < ?", rows[drop]!.firstSeq);
    rows.splice(0, drop);
  }

  private summaries(): RowSummary[] {
    if (this.rows) return this.rows;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS history (
      first_seq INTEGER PRIMARY KEY,
      count INTEGER NOT NULL,
      frames TEXT NOT NULL,
      excluded TEXT NOT NULL,
      bytes INTEGER NOT NULL,
      at INTEGER NOT NULL
    )`);
    this.rows = this.sql
      .exec<{ first_seq: number; count: number; bytes: number; at: number }>("SELECT first_seq, count, bytes, at FROM history ORDER BY first_seq")
      .toArray()
      .map((row) => ({ firstSeq: row.first_seq, count: row.count, bytes: row.bytes, at: row.at }));
    for (const row of this.rows) {
      this.frames += row.count;
      this.bytes += row.bytes;
    }
    return this.rows;
  }
}
