#!/usr/bin/env node
// Turns a .cu file into C++ for the CUDA emulator build (test/cuda-emulator/README.md):
// every `kernel<<<config>>>(args)` becomes
// `::cgemu::Launch("kernel", __FILE__, __LINE__, config)(kernel, args)`, and nothing else
// changes (same lines, a #line naming the original file), so the emulator runs exactly
// the source nvcc compiles. A launch it cannot parse is an error, never a silent skip.
//   node test/cuda-emulator/rewrite-launches.mjs <in.cu> <out.cc>
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The index of the bracket that closes the one at `open` (forward) or opens the one at `close` (backward). */
function matchForward(text, open, openCh, closeCh) {
  let depth = 0;
  for (let i = open; i < text.length; ++i) {
    if (text[i] === openCh) ++depth;
    else if (text[i] === closeCh && --depth === 0) return i;
  }
  return -1;
}
function matchBackward(text, close, openCh, closeCh) {
  let depth = 0;
  for (let i = close; i >= 0; --i) {
    if (text[i] === closeCh) ++depth;
    else if (text[i] === openCh && --depth === 0) return i;
  }
  return -1;
}

/**
 * The source with comments and string and character literals blanked (newlines kept), so
 * that `<<<` or a bracket in a comment is not taken for code. Same length as `source`.
 */
export function blankCommentsAndStrings(source) {
  const out = source.split('');
  const blank = (from, to) => {
    for (let k = from; k < to; ++k) if (out[k] !== '\n') out[k] = ' ';
  };
  for (let i = 0; i < source.length; ) {
    const two = source.slice(i, i + 2);
    if (two === '//') {
      const end = source.indexOf('\n', i);
      const stop = end < 0 ? source.length : end;
      blank(i, stop);
      i = stop;
    } else if (two === '/*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end < 0 ? source.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (source[i] === '"' || source[i] === "'") {
      const quote = source[i];
      let j = i + 1;
      while (j < source.length && source[j] !== quote && source[j] !== '\n') j += source[j] === '\\' ? 2 : 1;
      blank(i + 1, j);  // the quotes stay, so the literal is still one token
      i = j + 1;
    } else {
      ++i;
    }
  }
  return out.join('');
}

export function rewriteLaunches(original, fileLabel) {
  // Searched and bracket-matched on the blanked text; the text written is the original's.
  const source = blankCommentsAndStrings(original);
  let out = '';
  let from = 0;
  const lineAt = (i) => source.slice(0, i).split('\n').length;
  for (;;) {
    const lt = source.indexOf('<<<', from);
    if (lt < 0) break;
    const fail = (what) => {
      throw new Error(`${fileLabel}:${lineAt(lt)}: cannot rewrite this kernel launch: ${what}`);
    };
    // The callee: an identifier (qualified or not) with optional template arguments.
    let end = lt;
    let start = end;
    if (source[start - 1] === '>') {
      const open = matchBackward(source, start - 1, '<', '>');
      if (open < 0) fail('unbalanced template arguments');
      start = open;
    }
    while (start > 0 && /[A-Za-z0-9_:]/.test(source[start - 1])) --start;
    const callee = source.slice(start, end).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_:]*(<[^;{}]*>)?$/.test(callee)) fail(`callee '${callee}'`);
    const gt = source.indexOf('>>>', lt + 3);
    if (gt < 0) fail('no >>>');
    const config = original.slice(lt + 3, gt);
    let p = gt + 3;
    while (/\s/.test(source[p])) ++p;
    if (source[p] !== '(') fail('no argument list after >>>');
    const close = matchForward(source, p, '(', ')');
    if (close < 0) fail('unbalanced argument list');
    const args = original.slice(p + 1, close);
    const name = callee.replace(/\s+/g, ' ');
    out += original.slice(from, start);
    out += `::cgemu::Launch("${name}", __FILE__, __LINE__, ${config})(${callee}${args.trim() ? `, ${args}` : ''})`;
    from = close + 1;
  }
  return out + original.slice(from);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error('usage: rewrite-launches.mjs <in.cu> <out.cc>');
    process.exit(2);
  }
  const source = readFileSync(input, 'utf8');
  const absolute = resolve(input);
  mkdirSync(dirname(output), { recursive: true });
  writeFileSync(output, `#line 1 "${absolute}"\n${rewriteLaunches(source, input)}`);
}
