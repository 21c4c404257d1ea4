/**
 * ChunkQueue: the one queue between a call's data arriving from the kernel
 * and its reader. Chunks are pushed in order, the end (or the error that
 * ended the call) is pushed once, and a reader takes them either one by one
 * (it is an async iterator; several next() calls may wait at once, and are
 * answered in order) or all at once (all() or concatenated()). Every
 * waiting promise settles when the queue ends.
 *
 * A queue is made per call: its arrays are made only when something has to
 * wait in them.
 */
type Waiter = { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: Error) => void };

export class ChunkQueue implements AsyncIterableIterator<Buffer> {
  private chunks: Buffer[] | undefined; // chunks not yet taken, from `head` on
  private head = 0;
  private ended = false;
  private error: Error | undefined;
  private waiters: Waiter[] | undefined;
  private whole: Promise<Buffer[]> | undefined; // all()
  private joined: Promise<Buffer> | undefined; // concatenated()
  // How the first of them to be asked for settles: with the chunks or their concatenation.
  private wholeDone:
    | { resolve: (chunks: Buffer[]) => void; reject: (e: Error) => void; join: false }
    | { resolve: (whole: Buffer) => void; reject: (e: Error) => void; join: true }
    | undefined;
  /** Bytes pushed so far. */
  bytes = 0;

  /** True once end() was called. */
  get isEnded(): boolean {
    return this.ended;
  }

  push(chunk: Buffer): void {
    if (this.ended) return;
    this.bytes += chunk.length;
    const waiter = this.waiters?.shift();
    if (waiter) waiter.resolve({ value: chunk, done: false });
    else if (this.chunks) this.chunks.push(chunk);
    else this.chunks = [chunk];
  }

  /** Ends the queue: with an error, every reader still waiting (and later) gets it. */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    const waiters = this.waiters;
    this.waiters = undefined;
    if (waiters) {
      for (const w of waiters) {
        if (error) w.reject(error);
        else w.resolve({ value: undefined, done: true });
      }
    }
    if (this.wholeDone) {
      const d = this.wholeDone;
      this.wholeDone = undefined;
      if (error) d.reject(error);
      else if (d.join) d.resolve(Buffer.concat(this.take()));
      else d.resolve(this.take());
    }
  }

  next(): Promise<IteratorResult<Buffer>> {
    const chunks = this.chunks;
    if (chunks && this.head < chunks.length) {
      const value = chunks[this.head];
      chunks[this.head++] = undefined as unknown as Buffer;
      if (this.head === chunks.length) {
        this.chunks = undefined;
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiters ??= []).push({ resolve, reject }));
  }

  /** A reader that stops early: what is left is dropped. */
  return(): Promise<IteratorResult<Buffer>> {
    this.chunks = undefined;
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
      if (this.joined) this.whole = this.joined.then((b) => [b]);
      else if (this.ended) this.whole = this.error ? Promise.reject(this.error) : Promise.resolve(this.take());
      else this.whole = new Promise((resolve, reject) => (this.wholeDone = { resolve, reject, join: false }));
    }
    return this.whole;
  }

  /**
   * What all() settles with, as one new Buffer: a copy even of a single
   * chunk, so that it keeps none of the buffers the chunks came in alive.
   * The same promise for every caller.
   */
  concatenated(): Promise<Buffer> {
    if (!this.joined) {
      if (this.whole) this.joined = this.whole.then((chunks) => Buffer.concat(chunks));
      else if (this.ended) this.joined = this.error ? Promise.reject(this.error) : Promise.resolve(Buffer.concat(this.take()));
      else this.joined = new Promise((resolve, reject) => (this.wholeDone = { resolve, reject, join: true }));
    }
    return this.joined;
  }

  private take(): Buffer[] {
    const chunks = this.chunks;
    const out = chunks === undefined ? [] : this.head === 0 ? chunks : chunks.slice(this.head);
    this.chunks = undefined;
    this.head = 0;
    return out;
  }
}
