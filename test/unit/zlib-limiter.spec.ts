/**
 * The zlib job limiter: never more jobs in flight than its limit, every job
 * run exactly once with its own result, waiting jobs started first in first
 * out, and a slot freed whatever way a job ends (resolve, reject, sync throw).
 * Also the process-wide instance permessage-deflate shares (10 jobs).
 */
import { ZLIB_CONCURRENCY, ZlibLimiter, zlibLimiter } from '../../lib/extensions/zlib-limiter.js';
import { prng, randomInt } from './helpers.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Jobs that record how many run at once; each settles when the test says so. */
function gauge() {
  let active = 0;
  let peak = 0;
  const started: number[] = [];
  const release = new Map<number, (outcome?: Error) => void>();
  const job = (id: number) => () => {
    active++;
    peak = Math.max(peak, active);
    started.push(id);
    return new Promise<number>((resolve, reject) => {
      // Once only: a second call would count the job out twice.
      release.set(id, (outcome) => {
        release.delete(id);
        active--;
        if (outcome === undefined) resolve(id);
        else reject(outcome);
      });
    });
  };
  return { job, started, release, active: () => active, peak: () => peak };
}

describe('ZlibLimiter', () => {
  it('runs at most its limit at once, starts waiting jobs in order, and runs every job once with its own result', async () => {
    const limiter = new ZlibLimiter(3);
    const g = gauge();
    const results = Array.from({ length: 12 }, (_, id) => limiter.run(g.job(id)));
    await tick();
    expect(g.started).toEqual([0, 1, 2]);

    // Finish them out of order: each freed slot goes to the oldest waiting job.
    g.release.get(1)!();
    await tick();
    expect(g.started).toEqual([0, 1, 2, 3]);
    g.release.get(0)!();
    g.release.get(3)!();
    await tick();
    expect(g.started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(g.active()).toBe(3);

    for (let round = 0; round < 20 && g.release.size > 0; round++) {
      for (const id of g.started) g.release.get(id)?.();
      await tick();
    }
    expect(await Promise.all(results)).toEqual(Array.from({ length: 12 }, (_, id) => id));
    expect(g.started).toEqual(Array.from({ length: 12 }, (_, id) => id));
    expect(g.peak()).toBe(3);
  });

  it('holds the limit under 200 jobs of random lengths, and ends with nothing running', async () => {
    const limiter = new ZlibLimiter(4);
    const rand = prng(7);
    let active = 0;
    let peak = 0;
    let ran = 0;
    const jobs = Array.from({ length: 200 }, (_, i) =>
      limiter.run(async () => {
        active++;
        ran++;
        peak = Math.max(peak, active);
        for (let n = randomInt(rand, 4); n > 0; n--) await tick();
        active--;
        return i * 2;
      }),
    );
    expect(await Promise.all(jobs)).toEqual(Array.from({ length: 200 }, (_, i) => i * 2));
    expect(ran).toBe(200);
    expect(peak).toBe(4);
    expect(active).toBe(0);
    // The slots all came back: 4 new jobs start at once.
    const g = gauge();
    const more = [0, 1, 2, 3].map((id) => limiter.run(g.job(id)));
    await tick();
    expect(g.started).toEqual([0, 1, 2, 3]);
    for (const id of [0, 1, 2, 3]) g.release.get(id)!();
    await Promise.all(more);
  });

  it('frees the slot of a job that rejects or throws synchronously, and passes its error on', async () => {
    const limiter = new ZlibLimiter(1);
    const rejected = limiter.run(() => Promise.reject(new Error('zlib broke')));
    const thrown = limiter.run((): Promise<number> => {
      throw new Error('thrown before any promise');
    });
    const after = limiter.run(async () => 'still runs');
    await expect(rejected).rejects.toThrow('zlib broke');
    await expect(thrown).rejects.toThrow('thrown before any promise');
    await expect(after).resolves.toBe('still runs');
    // With a limit of 1, a slot lost to either failure would leave this waiting forever.
    await expect(limiter.run(async () => 'and again')).resolves.toBe('and again');
  });

  it('lets no newcomer overtake jobs already waiting when a slot frees', async () => {
    const limiter = new ZlibLimiter(1);
    const g = gauge();
    const first = limiter.run(g.job(0));
    const waiting = limiter.run(g.job(1));
    await tick();
    g.release.get(0)!();
    // Submitted in the same turn as the release: it must queue behind job 1.
    const newcomer = limiter.run(g.job(2));
    await first;
    await tick();
    expect(g.started).toEqual([0, 1]);
    expect(g.active()).toBe(1);
    g.release.get(1)!();
    await waiting;
    await tick();
    g.release.get(2)!();
    await newcomer;
    expect(g.started).toEqual([0, 1, 2]);
    expect(g.peak()).toBe(1);
  });

  it('the process-wide limiter permessage-deflate uses allows 10 jobs at once', async () => {
    expect(ZLIB_CONCURRENCY).toBe(10);
    const g = gauge();
    const jobs = Array.from({ length: 25 }, (_, id) => zlibLimiter.run(g.job(id)));
    await tick();
    expect(g.started).toHaveLength(10);
    for (let round = 0; round < 10 && g.release.size > 0; round++) {
      for (const id of g.started) g.release.get(id)?.();
      await tick();
    }
    await Promise.all(jobs);
    expect(g.started).toEqual(Array.from({ length: 25 }, (_, id) => id));
    expect(g.peak()).toBe(10);
  });
});
