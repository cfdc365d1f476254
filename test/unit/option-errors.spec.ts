/**
 * Every option check shows the value it refused with its type: `"500"`
 * from an environment variable must not read as the number 500.
 */
import { resolveExtensionFactories } from '../../lib/extensions/extension-options.js';
import { permessageDeflate } from '../../lib/extensions/permessage-deflate.factory.js';
import { describeValue } from '../../lib/protocol/describe-value.js';
import { checkProtocolOption } from '../../lib/protocol/handshake.js';
import { originPolicy } from '../../lib/protocol/origin-policy.js';
import { checkIntegerOption, resolveSessionSettings } from '../../lib/session/websocket-session-options.js';

class Settings {}

describe('describeValue', () => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;

  it.each<[string, unknown, string]>([
    ['a string', '500', '"500" (a string)'],
    ['an empty string', '', '"" (a string)'],
    ['a number', 500, '500 (a number)'],
    ['NaN', NaN, 'NaN (a number)'],
    ['Infinity', Infinity, 'Infinity (a number)'],
    ['a boolean', true, 'true (a boolean)'],
    ['a bigint', 500n, '500n (a bigint)'],
    ['a symbol', Symbol('x'), 'Symbol(x) (a symbol)'],
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ['an array', [1, 'a'], '[1,"a"] (an array)'],
    ['a plain object', { value: 500 }, '{"value":500} (an object)'],
    ['an object that JSON cannot show', circular, '[not printable] (an object)'],
    ['a class instance', new Settings(), 'an instance of Settings'],
    ['a RegExp', /a+/i, '/a+/i (a RegExp)'],
    ['a named function', function parse() {}, 'a function named parse'],
    ['an anonymous function', (() => () => undefined)(), 'a function'],
  ])('shows %s with its type', (_what, value, shown) => {
    expect(describeValue(value)).toBe(shown);
  });

  it('cuts a long value short', () => {
    expect(describeValue('x'.repeat(100))).toBe(`"${'x'.repeat(58)}… (a string)`);
  });
});

describe('option errors show the value with its type', () => {
  it.each<[string, () => unknown, string]>([
    [
      'an integer option given a string',
      () => checkIntegerOption('maxFrameSize', '500', 1),
      'WebSockets option "maxFrameSize" must be an integer from 1 to 2147483647, got "500" (a string)',
    ],
    [
      'an integer option given NaN (Number of an unset variable)',
      () => resolveSessionSettings({ pingInterval: NaN }),
      'WebSockets option "pingInterval" must be an integer from 0 to 2147483647, got NaN (a number)',
    ],
    [
      'an integer option given an object',
      () => resolveSessionSettings({ timeout: { ms: 5 } as never }),
      'WebSockets option "timeout" must be an integer from 1 to 2147483647, got {"ms":5} (an object)',
    ],
    [
      'an integer option given null',
      () => resolveSessionSettings({ closeTimeout: null as never }),
      'WebSockets option "closeTimeout" must be an integer from 0 to 2147483647, got null',
    ],
    [
      'allowedOrigins given a string',
      () => originPolicy('https://app.example.com' as never),
      'WebSockets option "allowedOrigins" must be an array, got "https://app.example.com" (a string)',
    ],
    [
      'an allowedOrigins entry that is a number',
      () => originPolicy([42 as never]),
      'WebSockets option "allowedOrigins" has an entry that is not a string or RegExp: 42 (a number)',
    ],
    [
      'protocol given a number',
      () => checkProtocolOption(1 as never),
      'WebSockets option "protocol" must be a token (letters, digits and !#$%&\'*+-.^_`|~), got 1 (a number)',
    ],
    [
      'protocol given a string with a space',
      () => checkProtocolOption('chat v1'),
      'WebSockets option "protocol" must be a token (letters, digits and !#$%&\'*+-.^_`|~), got "chat v1" (a string)',
    ],
    [
      'extensions given an object',
      () => resolveExtensionFactories({ extensions: {} as never }),
      'WebSockets option "extensions" must be an array of extension factories, got {} (an object)',
    ],
    [
      'deflate given a string',
      () => resolveExtensionFactories({ deflate: 'true' as never }),
      'WebSockets option "deflate" must be a boolean or an options object, got "true" (a string)',
    ],
    [
      'a deflate flag given a string',
      () => permessageDeflate({ serverNoContextTakeover: 'false' as never }),
      'WebSockets option "deflate.serverNoContextTakeover" must be a boolean, got "false" (a string)',
    ],
    [
      'a deflate number given a string',
      () => permessageDeflate({ threshold: '1024' as never }),
      'WebSockets option "deflate.threshold" must be an integer from 0 to 2147483647, got "1024" (a string)',
    ],
    [
      'deflate.compressIf given a boolean',
      () => permessageDeflate({ compressIf: true as never }),
      'WebSockets option "deflate.compressIf" must be a function, got true (a boolean)',
    ],
  ])('%s', (_what, check, message) => {
    expect(check).toThrow(new TypeError(message));
  });
});
