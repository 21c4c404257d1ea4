/**
 * ChunkQueue: the one queue between a call's data arriving from the kernel
 * and its reader. Chunks are pushed in order, the end (or the error that
 * ended the call) is pushed once, and a reader takes them either one by one
 * (it is an async iterator; several next() calls may wait at once, and are
 * answered in order) or all at once (all()). Every waiting promise settles
 * when the queue ends.
 */
export class ChunkQueue implements AsyncIterableIterator<Buffer> {
  private chunks: Buffer[] = [];
  private head = 0;
  private ended = false;
  private error: Error | undefined;
  private waiters: Array<{ resolve: (r: IteratorResult<Buffer>) => void; reject: (e: Error) => void }> = [];
  private whole: Promise<Buffer[]> | undefined;
  private wholeDone: { resolve: (chunks: Buffer[]) => void; reject: (e: Error) => void } | undefined;
  /** Bytes pushed so far. */
  bytes = 0;

  /** True once end() was called. */
  get isEnded(): boolean {
    return this.ended;
  }

  push(chunk: Buffer): void {
    if (this.ended) return;
    this.bytes += chunk.length;
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve({ value: chunk, done: false });
    else this.chunks.push(chunk);
  }

  /** Ends the queue: with an error, every reader still waiting (and later) gets it. */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    for (const w of this.waiters.splice(0)) {
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
    if (this.wholeDone) {
      const d = this.wholeDone;
      this.wholeDone = undefined;
      if (error) d.reject(error);
      else d.resolve(this.take());
    }
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.head < this.chunks.length) {
      const value = this.chunks[this.head];
      this.chunks[this.head++] = undefined as unknown as Buffer;
      if (this.head === this.chunks.length) {
        this.chunks = [];
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** A reader that stops early: what is left is dropped. */
  return(): Promise<IteratorResult<Buffer>> {
    this.chunks = [];
    this.head = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Every chunk up to the end, or the error that ended the queue. The same
   * promise for every caller; chunks already taken by next() are not in it.
   */
  all(): Promise<Buffer[]> {
    if (!this.whole) {
      if (this.ended) {
        this.whole = this.error ? Promise.reject(this.error) : Promise.resolve(this.take());
      } else {
        this.whole = new Promise((resolve, reject) => (this.wholeDone = { resolve, reject }));
      }
    }
    return this.whole;
  }

  private take(): Buffer[] {
    const out = this.head === 0 ? this.chunks : this.chunks.slice(this.head);
    this.chunks = [];
    this.head = 0;
    return out;
  }
}
