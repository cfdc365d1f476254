/**
 * What a topic may be: a non-empty string of at most MAX_TOPIC_BYTES bytes
 * of UTF-8. Bounded so that a name taken from a peer cannot grow the index
 * without limit, and so that it fits a broker's keys and channels (Redis).
 */
import { describeValue } from '../protocol/describe-value.js';

export const MAX_TOPIC_BYTES = 256;

/** Throws, naming `caller` and what to do, unless `topic` is a valid topic. */
export function checkTopic(topic: unknown, caller: string): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError(`${caller}: a topic must be a non-empty string, got ${describeValue(topic)}`);
  }
  // A UTF-16 unit is at most 3 bytes of UTF-8: only names that may be too long are measured.
  if (topic.length * 3 <= MAX_TOPIC_BYTES) return;
  const bytes = Buffer.byteLength(topic, 'utf8');
  if (bytes > MAX_TOPIC_BYTES) {
    throw new RangeError(
      // The limit first: a close reason carrying this message keeps only its first 123 bytes.
      `${caller}: a topic may have at most ${MAX_TOPIC_BYTES} bytes of UTF-8, this one has ${bytes}: name it by a short id ` +
        `of what it stands for (a room id, or a hash of a longer key). The topic: ${describeValue(topic)}`,
    );
  }
}
