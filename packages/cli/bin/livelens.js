#!/usr/bin/env node
// The `livelens` command. Its sources are TypeScript run through tsx (a root devDependency): the CLI is for
// people who run LiveLens from this repository; the services it starts are the built ones (dist/).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything the command opened is closed by now; should a handle still hold the event loop (a download an
// interrupt left running), leave anyway.
setTimeout(() => process.exit(code), 2_000).unref();
