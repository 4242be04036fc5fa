#!/usr/bin/env node
// The package ships TypeScript sources; tsx compiles them on load so `npx ci-oidc` works right after install.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
