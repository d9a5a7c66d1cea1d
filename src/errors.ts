// Argument errors in the style of Node's own: a TypeError or RangeError whose message
// names the argument, with a `code` a program can test.

export type ArgErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE';

export function argTypeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' as const });
}

export function argRangeError(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_INVALID_ARG_VALUE' as const });
}

/** How a value reads in an error message: its type, or the class of an object. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an Array';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'string') return `string '${value.length > 40 ? value.slice(0, 40) + '…' : value}'`;
  return typeof value;
}
