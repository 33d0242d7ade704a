import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'dotenv';
import { packageRoot } from './package-root.js';

/** A `.env` file the settings were looked for in, and whether it was there. */
export interface EnvFile {
  path: string;
  found: boolean;
}

export interface EnvFilePlaces {
  /** The working directory. */
  cwd: string;
  /** The Crunch checkout the CLI runs from (its package.json's folder). */
  projectRoot: string | undefined;
  /** `$XDG_CONFIG_HOME`, or `~/.config` when it is unset. */
  configHome: string;
}

/** Where `.env` is looked for, first match of a variable wins: the working directory, the project root, `$XDG_CONFIG_HOME/crunch`. */
export function envFilePaths(places: EnvFilePlaces): string[] {
  const paths = [join(places.cwd, '.env')];
  if (places.projectRoot !== undefined) paths.push(join(places.projectRoot, '.env'));
  paths.push(join(places.configHome, 'crunch', '.env'));
  return [...new Set(paths.map((p) => resolve(p)))];
}

/** The places of this process: its working directory, the checkout holding this file, the XDG config folder. */
export function defaultPlaces(env: NodeJS.ProcessEnv = process.env): EnvFilePlaces {
  const xdg = env.XDG_CONFIG_HOME?.trim();
  return {
    cwd: process.cwd(),
    projectRoot: packageRoot(),
    // The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
    configHome: xdg?.startsWith('/') ? xdg : join(env.HOME?.trim() || homedir(), '.config'),
  };
}

/**
 * Fills `env` from the `.env` files at `paths`, in order: a variable already set (in the environment, or by an
 * earlier file) is kept. Returns every path with whether it was found, for messages that say where Crunch looked.
 */
export function loadEnvFiles(env: NodeJS.ProcessEnv, paths: string[]): EnvFile[] {
  return paths.map((path) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return { path, found: false };
    }
    for (const [key, value] of Object.entries(parse(text))) {
      if (env[key] === undefined) env[key] = value;
    }
    return { path, found: true };
  });
}

/** "the environment, then /a/.env (read), /b/.env (not found)": for an error about a missing setting. */
export function describeEnvFiles(files: EnvFile[]): string {
  if (files.length === 0) return 'the environment';
  return `the environment, then ${files.map((f) => `${f.path} (${f.found ? 'read' : 'not found'})`).join(', ')}`;
}
