#!/usr/bin/env node
// The `livelens` command. Its sources are TypeScript run through tsx (a root devDependency): the CLI is for
// people who run LiveLens from this repository; the services it starts are the built ones (dist/).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
