/**
 * Builds the Teams app package (the zip you sideload or upload to the Teams admin center) from
 * manifest/teams: fills the manifest's ${{NAME}} placeholders from the environment (and .env), checks the
 * result and the two icons, and zips manifest.json, color.png and outline.png at the root.
 *
 *   npm run package:teams                    # writes dist/teams/crunch-teams.zip
 *   npm run package:teams -- --out app.zip
 *
 * Runs with `node --experimental-strip-types`, so it imports no local TypeScript.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { zipSync } from 'fflate';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MANIFEST_DIR = resolve(ROOT, 'manifest/teams');
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface PackageResult {
  zip: Uint8Array;
  manifest: Record<string, unknown>;
}

export class PackageError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Cannot build the Teams package:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'PackageError';
    this.problems = problems;
  }
}

/** The placeholder values, from the environment; what is missing is reported by name. */
export function placeholderValues(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const publicUrl = env.PUBLIC_URL?.trim();
  let domain = env.TEAMS_BOT_DOMAIN?.trim();
  if (!domain && publicUrl) {
    try {
      domain = new URL(publicUrl).host;
    } catch {
      domain = undefined;
    }
  }
  const website = env.TEAMS_DEVELOPER_WEBSITE_URL?.trim() || (publicUrl?.startsWith('https://') ? publicUrl : undefined);
  const appId = env.MicrosoftAppId?.trim();
  return {
    TEAMS_APP_ID: env.TEAMS_APP_ID?.trim() || appId,
    BOT_ID: appId,
    BOT_DOMAIN: domain,
    APP_VERSION: env.TEAMS_APP_VERSION?.trim() || packageVersion(),
    DEVELOPER_NAME: env.TEAMS_DEVELOPER_NAME?.trim() || 'Crunch',
    DEVELOPER_WEBSITE_URL: website,
    DEVELOPER_PRIVACY_URL: env.TEAMS_DEVELOPER_PRIVACY_URL?.trim() || website,
    DEVELOPER_TERMS_URL: env.TEAMS_DEVELOPER_TERMS_URL?.trim() || website,
  };
}

const SOURCE_OF: Record<string, string> = {
  TEAMS_APP_ID: 'TEAMS_APP_ID (or MicrosoftAppId)',
  BOT_ID: 'MicrosoftAppId',
  BOT_DOMAIN: 'PUBLIC_URL (or TEAMS_BOT_DOMAIN)',
  APP_VERSION: 'TEAMS_APP_VERSION',
  DEVELOPER_NAME: 'TEAMS_DEVELOPER_NAME',
  DEVELOPER_WEBSITE_URL: 'TEAMS_DEVELOPER_WEBSITE_URL (or an https PUBLIC_URL)',
  DEVELOPER_PRIVACY_URL: 'TEAMS_DEVELOPER_PRIVACY_URL',
  DEVELOPER_TERMS_URL: 'TEAMS_DEVELOPER_TERMS_URL',
};

export function buildTeamsPackage(env: Record<string, string | undefined>, dir = MANIFEST_DIR): PackageResult {
  const problems: string[] = [];
  const values = placeholderValues(env);
  const template = readFileSync(resolve(dir, 'manifest.json'), 'utf8');
  const filled = template.replace(/\$\{\{(\w+)\}\}/g, (whole, name: string) => {
    const value = values[name] ?? env[name];
    if (value === undefined || value === '') {
      problems.push(`${SOURCE_OF[name] ?? name}: required to fill \${{${name}}} in manifest.json`);
      return whole;
    }
    return JSON.stringify(value).slice(1, -1);
  });
  const manifest = JSON.parse(filled) as {
    id?: string;
    version?: string;
    bots?: { botId?: string }[];
    developer?: Record<string, string>;
    validDomains?: string[];
    icons?: { color?: string; outline?: string };
  };
  if (problems.length === 0) {
    if (!GUID.test(String(manifest.id))) problems.push('TEAMS_APP_ID: must be a GUID');
    for (const bot of manifest.bots ?? []) if (!GUID.test(String(bot.botId))) problems.push('MicrosoftAppId: must be the bot\'s app id, a GUID');
    if (!/^\d+\.\d+\.\d+$/.test(String(manifest.version))) problems.push('TEAMS_APP_VERSION: must look like 1.2.3');
    for (const key of ['websiteUrl', 'privacyUrl', 'termsOfUseUrl']) {
      if (!String(manifest.developer?.[key]).startsWith('https://')) problems.push(`developer.${key}: must be an https URL`);
    }
    for (const domain of manifest.validDomains ?? []) {
      if (/[/:]/.test(String(domain).replace(/:\d+$/, ''))) problems.push(`validDomains: "${domain}" must be a host name, without scheme or path`);
    }
  }
  const files: Record<string, Uint8Array> = { 'manifest.json': Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) };
  for (const [name, size] of [
    [manifest.icons?.color ?? 'color.png', 192],
    [manifest.icons?.outline ?? 'outline.png', 32],
  ] as const) {
    const path = resolve(dir, name);
    if (!existsSync(path)) {
      problems.push(`${name}: missing from manifest/teams`);
      continue;
    }
    const png = readFileSync(path);
    const dims = pngSize(png);
    if (dims === undefined) problems.push(`${name}: not a PNG`);
    else if (dims.width !== size || dims.height !== size) problems.push(`${name}: must be ${size}x${size}, is ${dims.width}x${dims.height}`);
    files[name] = png;
  }
  if (problems.length > 0) throw new PackageError(problems);
  return { zip: zipSync(files, { level: 9 }), manifest };
}

function pngSize(png: Buffer): { width: number; height: number } | undefined {
  if (png.length < 24 || png.readUInt32BE(0) !== 0x89504e47 || png.toString('ascii', 12, 16) !== 'IHDR') return undefined;
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

function packageVersion(): string | undefined {
  try {
    return (JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function main(argv: string[]): void {
  const envFile = resolve(ROOT, '.env');
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  const outFlag = argv.indexOf('--out');
  const out = resolve(outFlag >= 0 && argv[outFlag + 1] ? argv[outFlag + 1]! : resolve(ROOT, 'dist/teams/crunch-teams.zip'));
  try {
    const { zip, manifest } = buildTeamsPackage(process.env);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, zip);
    console.log(`Teams app package written to ${out} (app id ${String(manifest.id)}, version ${String(manifest.version)}).`);
    console.log('Upload it in Teams: Apps → Manage your apps → Upload an app → Upload a custom app.');
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
