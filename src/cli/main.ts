/**
 * `midge [SUBCOMMAND] [ARGS]`: one table of subcommands, each a module under commands/ exporting
 * `run(argv): Promise<number>` (the exit code). No subcommand, or a leading flag, means `serve`,
 * so `midge -c FILE` and `midge -p PORT` behave as `mosquitto -c FILE` / `mosquitto -p PORT`.
 */

interface Command {
  summary: string
  load: () => Promise<{ run(argv: string[]): Promise<number> }>
}

const commands: Record<string, Command> = {
  serve: { summary: 'run the broker (the default)', load: () => import('./commands/serve.js') },
  pub: { summary: 'publish messages (flags of mosquitto_pub)', load: () => import('./commands/pub.js') },
  sub: { summary: 'subscribe and print messages (flags of mosquitto_sub)', load: () => import('./commands/sub.js') },
  passwd: { summary: 'manage a password file (flags of mosquitto_passwd)', load: () => import('./commands/passwd.js') },
  check: { summary: 'validate a configuration without starting: midge check -c FILE', load: () => import('./commands/check.js') },
  'import-mosquitto': { summary: "take over Mosquitto's mosquitto.db: midge import-mosquitto FILE [--dry-run]", load: () => import('./commands/import-mosquitto.js') },
  init: { summary: 'write a secure set-up (TLS, passwords): midge init [--domain NAME] [--user NAME] [--dir DIR]', load: () => import('./commands/init.js') },
  'install-service': { summary: 'install the systemd service: midge install-service [--user NAME] [--config FILE] [--disable-mosquitto]', load: () => import('./commands/install-service.js') },
  cert: { summary: 'certificates obtained by ACME: midge cert status|renew -c FILE', load: () => import('./commands/cert.js') },
}

const aliases: Record<string, string> = {
  publish: 'pub',
  subscribe: 'sub',
  password: 'passwd',
}

export function usage(): string {
  const lines = ['Usage: midge [COMMAND] [OPTIONS]', '', 'Commands:']
  const width = Math.max(...Object.keys(commands).map((n) => n.length))
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(width)} ${c.summary}`)
  lines.push('', 'Without a command, midge runs the broker: midge [-c FILE] [-p PORT] [-v]', 'midge COMMAND --help shows the options of a command.')
  return lines.join('\n')
}

export async function main(argv: string[]): Promise<void> {
  const first = argv[0]
  if (first === '--help' || first === 'help') {
    process.stdout.write(usage() + '\n')
    return
  }
  if (first === '--version' || first === 'version') {
    const { VERSION } = await import('../version.js')
    process.stdout.write(`midge ${VERSION}\n`)
    return
  }
  let name = 'serve'
  let rest = argv
  if (first !== undefined && !first.startsWith('-')) {
    name = aliases[first] ?? first
    rest = argv.slice(1)
  }
  const command = commands[name]
  if (command === undefined) {
    process.stderr.write(`midge: unknown command '${first}'\n\n${usage()}\n`)
    process.exitCode = 1
    return
  }
  const mod = await command.load()
  const code = await mod.run(rest)
  if (code !== 0) process.exitCode = code
}
