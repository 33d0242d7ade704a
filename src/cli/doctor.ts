import { styleText } from 'node:util';
import { describeEnvFiles } from '../config/env-files.js';
import { type Config, ConfigError, loadConfig } from '../config/index.js';
import { type Check, codeInterpreterCheck, doctorSettings, localEngineCheck, modelCheck, slackChecks, storeCheck, teamsAuthority, teamsCheck } from './checks.js';
import type { CommandContext } from './commands.js';

/**
 * `crunch doctor`: checks the configuration against the live services and prints a ✓ or ✗ line for each
 * (with what to fix). Exit code 1 when anything needs fixing or did not answer.
 */
export async function run(ctx: CommandContext): Promise<number> {
  const out = ctx.out;
  const mark = (good: boolean) => (good ? styleText('green', '✓', { stream: out }) : styleText('red', '✗', { stream: out }));
  const print = (check: Check) => {
    out.write(`${mark(check.outcome === 'ok')} ${check.subject}: ${check.detail}\n`);
    if (check.fix !== undefined) out.write(`    → ${check.fix}\n`);
  };

  out.write(`Settings from ${describeEnvFiles(ctx.envFiles)}.\n`);
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) print({ outcome: 'fix', subject: 'configuration', detail: problem, fix: 'set it in one of the .env files above, or in the environment (see .env.example)' });
    return 1;
  }
  print({ outcome: 'ok', subject: 'configuration', detail: 'every variable is valid' });

  // The services are asked at once; the answers are printed in this order.
  const api = config.openai!;
  const engine = modelCheck(api).then(async (model) => {
    if (config.engine === 'local') return [model, await localEngineCheck(config)];
    return model.outcome === 'ok' ? [model, await codeInterpreterCheck(api)] : [model];
  });
  const platforms = Promise.all([
    config.slack !== undefined ? slackChecks(config.slack) : [],
    // TEAMS_LOGIN_URL is for this check alone, so it is read here rather than in the configuration.
    config.teams.enabled ? teamsCheck(config.teams, teamsAuthority(config.teams, doctorSettings(process.env).teamsLoginUrl)).then((c) => [c]) : [],
  ]).then((found) => found.flat());
  const store = storeCheck(config).then((c) => [c]);

  const checks: Check[] = [];
  for (const group of [engine, platforms, store]) {
    for (const check of await group) {
      checks.push(check);
      print(check);
    }
    if (group === engine && config.slack === undefined && !config.teams.enabled) {
      out.write('– no chat platform is configured (Slack, Teams): `crunch ask` and `crunch chat` work without one\n');
    }
  }

  const problems = checks.filter((c) => c.outcome !== 'ok').length;
  out.write(problems === 0 ? 'Everything works.\n' : `${problems} ${problems === 1 ? 'thing needs' : 'things need'} fixing.\n`);
  return problems === 0 ? 0 : 1;
}
