#!/usr/bin/env node
/**
 * The `iroh-raft` command. This version ships the consensus core only; the node commands
 * (`start`, `dev`, `ticket`) arrive with the node itself.
 */
import { readFileSync } from 'node:fs';

const USAGE = `usage: iroh-raft <command>

commands:
  version    print the version
  help       print this help

The node commands (start, dev, ticket) are not part of this version yet.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function main(argv: readonly string[]): number {
  const [cmd] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    case 'version':
    case '--version':
      console.log(version());
      return 0;
    default:
      console.error(JSON.stringify({ error: { code: 'UnknownCommand', message: `unknown command '${cmd}'` } }));
      console.error(USAGE);
      return 2;
  }
}

process.exitCode = main(process.argv.slice(2));
