// The `wsgate` command. Each subcommand lives in its own module, loaded with import() only when it runs: the
// controller and the webhook need @kubernetes/client-node (some 90 MB of resident memory), and serve, sidecar,
// translate and the data-plane workers must not pay for it. So this file imports nothing that a subcommand needs.
// Each subcommand parses its own flags strictly: an unknown flag or a bad value exits 2 with a message that says
// what to change; `wsgate COMMAND --help` (or `wsgate help COMMAND`) prints that command's usage.
import { readFileSync } from 'node:fs';
import { ErrorCodes, WsgateError } from '../errors.ts';
import { BadFlagError } from './flags.ts';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

type Run = (args: string[], o: { version: string }) => Promise<void>;

interface Command {
  /** One line for the global help. */
  readonly summary: string;
  /** Loads the command's module and returns its entry point, which also answers --help. */
  readonly load: () => Promise<Run>;
}

// Adding a command: a line here, and a module whose entry point prints its own usage on --help.
const COMMANDS: Readonly<Record<string, Command>> = {
  serve: {
    summary: 'serve the objects in a YAML file or directory (watched for changes)',
    load: async () => (await import('./serve-command.ts')).runServe,
  },
  controller: {
    summary: 'serve the Ingresses, WebSocketRoutes and TCPTunnels of a Kubernetes cluster, and write their status',
    load: async () => (await import('../controller/cli.ts')).runController,
  },
  sidecar: {
    summary: "proxy one app in its pod: one route, readiness from the app's port",
    load: async () => (await import('../sidecar/cli.ts')).runSidecar,
  },
  webhook: {
    summary: 'inject the sidecar into pods annotated wsgate.io/inject: "true"',
    load: async () => (await import('../webhook/cli.ts')).runWebhook,
  },
  translate: {
    summary: 'print the routing table and statuses the objects in YAML files translate to',
    load: async () => (await import('./translate-command.ts')).runTranslate,
  },
  migrate: {
    summary: "report what wsgate does with each ingress-nginx annotation of Ingresses, and print equivalent WebSocketRoutes",
    load: async () => (await import('./migrate-command.ts')).runMigrate,
  },
};

const COMMAND_NAMES = Object.keys(COMMANDS);

export const USAGE = `wsgate ${VERSION}: an ingress proxy for WebSockets and other long-lived connections

Usage: wsgate COMMAND [flags]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`)
  .join('\n')}
  version     print the version (also -v, --version)
  help        this text

wsgate COMMAND --help (or wsgate help COMMAND) prints the command's usage and flags.
Documentation: README.md and docs/ in wsgate's source.
`;

function unknownCommand(command: string): BadFlagError {
  return new BadFlagError(`unknown command "${command}": use ${COMMAND_NAMES.join(', ')}, version or help`);
}

async function dispatch(command: string | undefined, rest: string[]): Promise<void> {
  switch (command) {
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`${VERSION}\n`);
      return;
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    case 'help': {
      const [topic] = rest;
      if (topic === undefined || topic === 'help') {
        process.stdout.write(USAGE);
        return;
      }
      if (topic === 'version') {
        process.stdout.write('Usage: wsgate version (or -v, --version)\n\nPrints the version of wsgate.\n');
        return;
      }
      if (!Object.hasOwn(COMMANDS, topic)) throw unknownCommand(topic);
      // A command's help is its own --help: one text per command, kept beside its flags.
      return await dispatch(topic, ['--help']);
    }
    default: {
      if (!Object.hasOwn(COMMANDS, command)) throw unknownCommand(command);
      const run = await COMMANDS[command]!.load();
      return await run(rest, { version: VERSION });
    }
  }
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    await dispatch(command, rest);
  } catch (err) {
    if (err instanceof BadFlagError) {
      process.stderr.write(`wsgate: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof WsgateError) {
      const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
      process.stderr.write(`wsgate: ${err.code}: ${err.message}${cause}\n`);
      // A configuration that cannot start is bad input, like a bad flag.
      process.exit(err.code === ErrorCodes.CONFIG_INVALID ? 2 : 1);
    }
    throw err;
  }
}
