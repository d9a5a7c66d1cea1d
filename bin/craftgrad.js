#!/usr/bin/env node
// The craftgrad command line; see src/cli/main.ts.
import { main } from '../dist/cli/main.js';

// `craftgrad ... | head`: when the reader goes away, stop quietly like other Unix tools
// rather than dying on an unhandled EPIPE with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

process.exitCode = await main(process.argv.slice(2));
