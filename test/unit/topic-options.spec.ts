/**
 * The `topics` option on its own: the first rule whose `match` fits a topic
 * applies (a RegExp or a predicate), and a bad rule is refused at startup
 * with a message naming the rule, the field and the value.
 */
import { TopicRules, type TopicOptions } from '../../lib/routing/topic-options.js';

describe('TopicRules', () => {
  it('has no rule for any topic without the option', () => {
    expect(TopicRules.of(undefined).for('room:1')).toBeUndefined();
    expect(TopicRules.of([]).for('room:1')).toBeUndefined();
  });

  it('applies the first rule that matches, by RegExp or by predicate', () => {
    const rooms: TopicOptions = { match: /^room:/, presence: true };
    const everything: TopicOptions = { match: () => true, history: { size: 10, ttl: 1000 } };
    const rules = TopicRules.of([rooms, { match: (topic) => topic.startsWith('feed:'), history: { size: 1, ttl: 1 } }, everything]);
    expect(rules.for('room:1')).toBe(rooms);
    // Asked again: a RegExp keeps no state between tests.
    expect(rules.for('room:1')).toBe(rooms);
    expect(rules.for('feed:x')?.history).toEqual({ size: 1, ttl: 1 });
    expect(rules.for('other')).toBe(everything);
  });

  it('keeps its own copy of the list: a later change to the array does not change the rules', () => {
    const list: TopicOptions[] = [{ match: /^a/, presence: true }];
    const rules = TopicRules.of(list);
    list.unshift({ match: () => true });
    expect(rules.for('b')).toBeUndefined();
  });

  it.each<[string, unknown, string]>([
    ['an object', { match: /x/ }, 'WebSocketsModule option topics must be an array of rules, got {"match":{}} (an object)'],
    ['a string', 'room:*', 'WebSocketsModule option topics must be an array of rules, got "room:*" (a string)'],
  ])('refuses topics that are %s', (_, topics, message) => {
    expect(() => TopicRules.of(topics as TopicOptions[])).toThrow(new TypeError(message));
  });

  it.each<[string, unknown, Error]>([
    ['a rule that is no object', null, new TypeError('WebSocketsModule option topics[1] must be an object, got null')],
    ['a missing match', {}, new TypeError('WebSocketsModule option topics[1].match must be a RegExp or a function of the topic, got undefined')],
    ['a string match', { match: 'room:' }, new TypeError('WebSocketsModule option topics[1].match must be a RegExp or a function of the topic, got "room:" (a string)')],
    [
      'a g-flag RegExp',
      { match: /^room:/g },
      new TypeError('WebSocketsModule option topics[1].match must not have the g or y flag (/^room:/g): test() would then match every other call'),
    ],
    [
      'a y-flag RegExp',
      { match: /room/y },
      new TypeError('WebSocketsModule option topics[1].match must not have the g or y flag (/room/y): test() would then match every other call'),
    ],
    [
      'a history that is no object',
      { match: /x/, history: null },
      new TypeError('WebSocketsModule option topics[1].history must be { size, ttl }, got null'),
    ],
    [
      'a history size of 0',
      { match: /x/, history: { size: 0, ttl: 1000 } },
      new RangeError('WebSocketsModule option topics[1].history.size must be a whole number of messages from 1, got 0 (a number)'),
    ],
    [
      'a history size as a string',
      { match: /x/, history: { size: '10', ttl: 1000 } },
      new RangeError('WebSocketsModule option topics[1].history.size must be a whole number of messages from 1, got "10" (a string)'),
    ],
    [
      'a fractional history ttl',
      { match: /x/, history: { size: 10, ttl: 1.5 } },
      new RangeError('WebSocketsModule option topics[1].history.ttl must be a whole number of milliseconds from 1, got 1.5 (a number)'),
    ],
    [
      'a missing history ttl',
      { match: /x/, history: { size: 10 } },
      new RangeError('WebSocketsModule option topics[1].history.ttl must be a whole number of milliseconds from 1, got undefined'),
    ],
    ['a presence that is no boolean', { match: /x/, presence: 'yes' }, new TypeError('WebSocketsModule option topics[1].presence must be true or false, got "yes" (a string)')],
    ['an envelope that is no function', { match: /x/, envelope: '{}' }, new TypeError('WebSocketsModule option topics[1].envelope must be a function of the message, got "{}" (a string)')],
  ])('refuses %s, naming the rule and the field', (_, rule, error) => {
    const attempt = () => TopicRules.of([{ match: /^ok$/ }, rule as TopicOptions]);
    expect(attempt).toThrow(error);
    expect(attempt).toThrow(error.constructor as new () => Error);
  });
});
