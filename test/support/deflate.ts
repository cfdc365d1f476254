/**
 * A peer's side of permessage-deflate (RFC 7692 §7.2) on node:zlib, written
 * here and sharing nothing with the library, so tests check its compression
 * against an independent codec: messages compressed and inflated alone (a
 * fresh context) or on a stream that keeps its window across messages; and
 * seeded test data that compresses and that does not.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { constants, deflateRawSync, inflateRawSync, type DeflateRaw, type InflateRaw } from 'node:zlib';

/** What a sync flush ends with: the sender drops it, the receiver puts it back (§7.2.1, §7.2.2). */
export const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** A message compressed on a fresh context, sync-flushed, the tail dropped: valid from any sender. */
export function deflateMessage(data: Buffer): Buffer {
  const out = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
  if (!out.subarray(-4).equals(TAIL)) throw new Error('zlib sync flush did not end with 00 00 ff ff');
  return out.subarray(0, -4);
}

/** One compressed message inflated on its own, as a receiver without context takeover does. */
export function inflateAlone(payload: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: constants.Z_SYNC_FLUSH });
}

/** Writes to a zlib stream and sync-flushes it: what came out. The stream keeps its window for the next call. */
export function flushThrough(stream: InflateRaw | DeflateRaw, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer) => chunks.push(chunk);
    stream.on('data', onData);
    stream.once('error', reject);
    stream.write(input);
    stream.flush(constants.Z_SYNC_FLUSH, () => {
      stream.off('data', onData);
      stream.off('error', reject);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** The next message of a stream of messages (context takeover): the tail put back, inflated. */
export const inflateNext = (inflater: InflateRaw, payload: Buffer) => flushThrough(inflater, Buffer.concat([payload, TAIL]));

/** The next message compressed on a stream that keeps its window (context takeover), the tail dropped. */
export const deflateNext = async (deflater: DeflateRaw, data: Buffer) => (await flushThrough(deflater, data)).subarray(0, -4);

/** Deterministic bytes that do not compress, from AES-CTR (native: byte loops in JS are slow under Jest). */
export function noise(seed: number, length: number): Buffer {
  const key = createHash('sha256').update(`seed ${seed}`).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** Hex text from a seed: compresses about 2:1, yet holds no long repeats of its own. */
export const hexText = (seed: number, length: number) => Buffer.from(noise(seed, Math.ceil(length / 2)).toString('hex').slice(0, length), 'latin1');
