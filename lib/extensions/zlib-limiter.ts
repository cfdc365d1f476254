/**
 * A process-wide cap on zlib jobs in flight. zlib runs on libuv's thread pool
 * (4 threads by default, shared with file and DNS work): a burst of
 * compressed messages from many sessions waits its turn here instead of
 * queueing unbounded work and buffers there.
 */
export class ZlibLimiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly concurrency: number) {}

  /** Runs `job` once fewer than `concurrency` jobs are running; its slot frees when it settles. */
  run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running < this.concurrency) {
      this.running++;
      return this.execute(job);
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.execute(job));
  }

  private execute<T>(job: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = job();
    } catch (error) {
      promise = Promise.reject(error);
    }
    return promise.finally(() => {
      const next = this.waiting.shift();
      // The slot passes straight to the next job, so no newcomer can squeeze in between.
      if (next !== undefined) next();
      else this.running--;
    });
  }
}

/** As `ws`: enough to keep the thread pool busy, few enough that other I/O still gets threads. */
export const ZLIB_CONCURRENCY = 10;
export const zlibLimiter = new ZlibLimiter(ZLIB_CONCURRENCY);
