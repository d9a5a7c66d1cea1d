// The one set of argument checks (src/validate.ts): each accepts what it should and returns
// it, and refuses the rest with a TypeError (wrong type) or RangeError (wrong value) naming
// the argument, with the code Node's own argument errors carry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_THREADS, checkBoolean, checkChoice, checkFiniteNumber, checkInteger, checkKnownKeys, checkObject, checkOptions, checkPresent, checkThreadCount,
} from '../dist/validate.js';

const typeError = (message) => ({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message });
const rangeError = (message) => ({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', message });

test('checkObject and checkOptions: an object whose keys are all known', () => {
  const o = { a: 1 };
  assert.equal(checkObject(o, 'options'), o);
  assert.equal(checkOptions(o, ['a', 'b']), o);
  assert.throws(() => checkObject(null, 'options'), typeError("options must be an object, got null"));
  assert.throws(() => checkObject(3, 'config'), typeError('config must be an object, got number 3'));
  assert.throws(() => checkOptions('x', ['a']), typeError("options must be an object, got string 'x'"));
  assert.throws(() => checkOptions({ a: 1, c: 2 }, ['a', 'b'], 'config'), typeError("config has an unknown option 'c' (known: a, b)"));
  assert.throws(() => checkKnownKeys({ z: 0 }, [], 'options'), typeError("options has an unknown option 'z' (known: )"));
  assert.equal(checkPresent(0, 'options.chunk'), 0);
  assert.throws(() => checkPresent(undefined, 'options.chunk'), typeError('options.chunk is required'));
});

test('checkInteger: a safe integer in the range, the range said as users read it', () => {
  assert.equal(checkInteger(0, 'n'), 0);
  assert.equal(checkInteger(7, 'n', 1), 7);
  assert.equal(checkInteger(5, 'n', 1, 5), 5);
  assert.throws(() => checkInteger(-1, 'options.seed', 0), rangeError('options.seed must be a non-negative integer, got number -1'));
  assert.throws(() => checkInteger(0, 'options.batchSize', 1), rangeError('options.batchSize must be a positive integer, got number 0'));
  assert.throws(() => checkInteger(1.5, 'options.batchSize', 1), rangeError('options.batchSize must be a positive integer, got number 1.5'));
  assert.throws(() => checkInteger(1, 'keep_last', 2), rangeError('keep_last must be an integer >= 2, got number 1'));
  assert.throws(() => checkInteger(6, 'config.rank', 1, 5), rangeError('config.rank must be an integer from 1 to 5, got number 6'));
  assert.throws(() => checkInteger('3', 'size', 1), rangeError("size must be a positive integer, got string '3'"));
  assert.throws(() => checkInteger(2 ** 53, 'n'), /n must be a non-negative integer/);
  assert.throws(() => checkInteger(NaN, 'n'), /got number NaN/);
});

test('checkFiniteNumber: a finite number above, at or below the limits', () => {
  assert.equal(checkFiniteNumber(-2.5, 'scale'), -2.5);
  assert.equal(checkFiniteNumber(0, 'lambda', { min: 0 }), 0);
  assert.equal(checkFiniteNumber(0.5, 'beta', { min: 0, below: 1 }), 0.5);
  assert.throws(() => checkFiniteNumber('1', 'options.lr', { min: 0 }), typeError("options.lr must be a number, got string '1'"));
  assert.throws(() => checkFiniteNumber(Infinity, 'options.scale'), rangeError('options.scale must be a finite number, got Infinity'));
  assert.throws(() => checkFiniteNumber(-0.1, 'options.lambda', { min: 0 }), rangeError('options.lambda must be a finite number >= 0, got -0.1'));
  assert.throws(() => checkFiniteNumber(0, 'options.eps', { min: 0, exclusive: true }), rangeError('options.eps must be a finite number > 0, got 0'));
  assert.throws(() => checkFiniteNumber(NaN, 'options.eps', { min: 0, exclusive: true }), /options.eps must be a finite number > 0, got NaN/);
  assert.throws(() => checkFiniteNumber(1, 'options.betas[1]', { min: 0, below: 1 }), rangeError('options.betas[1] must be < 1, got 1'));
});

test('checkBoolean and checkChoice', () => {
  assert.equal(checkBoolean(false, 'options.dual'), false);
  assert.throws(() => checkBoolean(1, 'options.dual'), typeError('options.dual must be a boolean, got number 1'));
  assert.equal(checkChoice('max', 'options.pooling', ['mean', 'max']), 'max');
  assert.throws(() => checkChoice('sum', 'options.pooling', ['mean', 'max']), rangeError("options.pooling must be one of 'mean', 'max', got string 'sum'"));
  assert.throws(() => checkChoice(undefined, 'options.mode', ['craft']), rangeError("options.mode must be one of 'craft', got undefined"));
});

test('one thread limit: 1 to MAX_THREADS', () => {
  assert.equal(MAX_THREADS, 1024);
  assert.equal(checkThreadCount(1, 'threads'), 1);
  assert.equal(checkThreadCount(MAX_THREADS, 'threads'), MAX_THREADS);
  assert.throws(() => checkThreadCount(MAX_THREADS + 1, 'threads'), rangeError('threads must be an integer from 1 to 1024, got number 1025'));
  assert.throws(() => checkThreadCount(0, 'threads'), rangeError('threads must be an integer from 1 to 1024, got number 0'));
});
