/**
 * How option errors show the value they refused: with its type, so that
 * `"500" (a string)` from an environment variable does not read as 500.
 * Shared by every layer's option checks (this is the lowest that has any).
 */

/** Longest value shown: a large object in an option should not flood the startup log. */
const MAX_SHOWN = 60;

/** `"500" (a string)`, `NaN (a number)`, `{"a":1} (an object)`, `null`, `undefined`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  switch (typeof value) {
    case 'string':
      return `${shorten(JSON.stringify(value))} (a string)`;
    case 'number':
    case 'boolean':
    case 'symbol':
      return `${String(value)} (a ${typeof value})`;
    case 'bigint':
      return `${String(value)}n (a bigint)`;
    case 'function':
      return value.name === '' ? 'a function' : `a function named ${value.name}`;
    default:
      return describeObject(value);
  }
}

function describeObject(value: object): string {
  if (Array.isArray(value)) return `${shownJson(value)} (an array)`;
  if (value instanceof RegExp) return `${String(value)} (a RegExp)`;
  const prototype = Object.getPrototypeOf(value) as object | null;
  const className = prototype === null || prototype === Object.prototype ? undefined : (prototype.constructor as Function | undefined)?.name;
  return className ? `an instance of ${className}` : `${shownJson(value)} (an object)`;
}

/** JSON when it can be (a cycle or a bigint inside cannot), cut to a readable length. */
function shownJson(value: object): string {
  try {
    return shorten(JSON.stringify(value));
  } catch {
    return '[not printable]';
  }
}

function shorten(text: string): string {
  return text.length <= MAX_SHOWN ? text : `${text.slice(0, MAX_SHOWN - 1)}…`;
}
