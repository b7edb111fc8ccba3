#!/usr/bin/env node
// The CLI is TypeScript, which Node runs directly from 22.18 on (type stripping).
if (!process.features.typescript) {
  console.error(`echo-edge needs Node.js 22.18 or later (this is ${process.version}).`);
  process.exit(1);
}
const { main } = await import("../cli/main.ts");
process.exitCode = main(process.argv.slice(2));
