/**
 * What the `topics` option says of topics: which keep a history, which
 * track presence, and how a message is framed with its position; checked
 * at startup, and the first rule that matches a topic applies.
 */
import type { TopicHistoryOptions } from '../broker/websocket-broker.js';
import { describeValue } from '../protocol/describe-value.js';
import type { Frame } from '../protocol/frame.js';
import type { StreamPosition } from '../session/topic-membership.js';

/** A message as it reaches a topic's subscribers, for `envelope`. */
export type TopicMessage = {
  readonly topic: string;
  /** Its position, on a topic with history; undefined otherwise. */
  readonly position: StreamPosition | undefined;
} & (
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'binary'; readonly bytes: Uint8Array }
  /** What `publishSerialized` was given (as JSON, when it crossed processes through Redis). */
  | { readonly type: 'value'; readonly value: unknown }
);

export interface TopicOptions {
  /** The topics these options are for: a RegExp tested against the name, or a predicate. */
  match: RegExp | ((topic: string) => boolean);
  /** Keep the newest messages for recovery (`session.subscribe(topic, { since })`); each message gets a position. */
  history?: TopicHistoryOptions;
  /** Track who subscribes, across processes: `WebSocketSessions.presence(topic)` and `onPresence`. */
  presence?: boolean;
  /**
   * What subscribers receive for each message, built once per process: the way to put the message's
   * position into it, so the client knows where it is. Without it they receive what was published.
   */
  envelope?: (message: TopicMessage) => string | Uint8Array | Frame;
}

/** The rules of the `topics` option, checked, and the first that matches a topic. */
export class TopicRules {
  private constructor(private readonly rules: readonly TopicOptions[]) {}

  static of(rules: TopicOptions[] | undefined): TopicRules {
    if (rules === undefined) return new TopicRules([]);
    if (!Array.isArray(rules)) throw new TypeError(`WebSocketsModule option topics must be an array of rules, got ${describeValue(rules)}`);
    rules.forEach(checkRule);
    return new TopicRules([...rules]);
  }

  for(topic: string): TopicOptions | undefined {
    for (const rule of this.rules) {
      if (typeof rule.match === 'function' ? rule.match(topic) : rule.match.test(topic)) return rule;
    }
    return undefined;
  }
}

function checkRule(rule: TopicOptions, index: number): void {
  const at = `WebSocketsModule option topics[${index}]`;
  if (typeof rule !== 'object' || rule === null) throw new TypeError(`${at} must be an object, got ${describeValue(rule)}`);
  if (!(rule.match instanceof RegExp) && typeof rule.match !== 'function') {
    throw new TypeError(`${at}.match must be a RegExp or a function of the topic, got ${describeValue(rule.match)}`);
  }
  if (rule.match instanceof RegExp && (rule.match.global || rule.match.sticky)) {
    // test() on a global or sticky RegExp resumes from the last match: the same topic would match every other time.
    throw new TypeError(`${at}.match must not have the g or y flag (${rule.match}): test() would then match every other call`);
  }
  if (rule.history !== undefined) {
    if (typeof rule.history !== 'object' || rule.history === null) throw new TypeError(`${at}.history must be { size, ttl }, got ${describeValue(rule.history)}`);
    const { size, ttl } = rule.history;
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`${at}.history.size must be a whole number of messages from 1, got ${describeValue(size)}`);
    if (!Number.isSafeInteger(ttl) || ttl < 1) throw new RangeError(`${at}.history.ttl must be a whole number of milliseconds from 1, got ${describeValue(ttl)}`);
  }
  if (rule.presence !== undefined && typeof rule.presence !== 'boolean') {
    throw new TypeError(`${at}.presence must be true or false, got ${describeValue(rule.presence)}`);
  }
  if (rule.envelope !== undefined && typeof rule.envelope !== 'function') {
    throw new TypeError(`${at}.envelope must be a function of the message, got ${describeValue(rule.envelope)}`);
  }
}
