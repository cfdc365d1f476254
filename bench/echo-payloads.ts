/** The echo clients' text messages (load-client.ts, batch-client.ts): what each one sends, so that every echo can be checked. */

/** JSON-like records, compressible about as much as real API payloads (not 'xxxx', which deflate shrinks to nothing). */
const RECORDS = Array.from(
  { length: 4096 },
  (_, i) => `{"id":${i},"user":"user-${(i * 7919) % 1000}","score":${(i * 104729) % 10007},"tags":["t${i % 13}","t${i % 7}"]},`,
).join('');
/** Built once per size: a message is a fresh tag plus this. */
const fillers = new Map<string, string>();

/** A text message naming its connection and sequence number, padded to the requested size. */
export function textMessage(size: number, id: number, seq: number, deflate: boolean): string {
  const tag = `c${id}s${seq}:`;
  if (tag.length >= size) return tag.slice(0, size);
  const key = `${size}:${deflate}`;
  let filler = fillers.get(key);
  if (filler === undefined) {
    filler = (deflate ? RECORDS.repeat(Math.ceil(size / RECORDS.length)) : 'x'.repeat(size)).slice(0, size);
    fillers.set(key, filler);
  }
  return tag + filler.slice(0, size - tag.length);
}
