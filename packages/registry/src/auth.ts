/**
 * Registry authentication: credentials from the auth files skopeo, podman and docker write
 * (never from our own state files), and the distribution spec's challenges: `Basic` answered
 * with them, `Bearer` with a token from the realm the challenge names (anonymous when there
 * are no credentials).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Where credentials are looked for, first found first: what containers-auth.json(5) lists, then docker's. */
export function defaultAuthFiles(): string[] {
  const files: string[] = [];
  const env = process.env.REGISTRY_AUTH_FILE;
  if (env !== undefined && env !== '') files.push(env);
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg.startsWith('/')) files.push(join(xdg, 'containers', 'auth.json'));
  const home = process.env.HOME ?? homedir();
  if (home !== '') {
    files.push(join(process.env.XDG_CONFIG_HOME ?? join(home, '.config'), 'containers', 'auth.json'));
    files.push(join(process.env.DOCKER_CONFIG ?? join(home, '.docker'), 'config.json'));
  }
  return files;
}

interface AuthFileEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
}

/** Credentials for `registry` in one auth file, undefined when it has none (or cannot be read). */
function fromFile(file: string, registry: string): Credentials | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  const auths = (doc as { auths?: unknown })?.auths;
  if (typeof auths !== 'object' || auths === null) return undefined;
  for (const key of [registry, `https://${registry}`, `http://${registry}`]) {
    const e = (auths as Record<string, AuthFileEntry | undefined>)[key];
    if (e === undefined || typeof e !== 'object') continue;
    if (typeof e.auth === 'string' && e.auth !== '') {
      const plain = Buffer.from(e.auth, 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
    }
    if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
  }
  return undefined;
}

/** The first auth file (of `files`, else the default list) with credentials for `registry`, and them. */
export function findCredentials(registry: string, files?: readonly string[]): { file: string; credentials: Credentials } | undefined {
  for (const file of files ?? defaultAuthFiles()) {
    const c = fromFile(file, registry);
    if (c !== undefined) return { file, credentials: c };
  }
  return undefined;
}

export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** `Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"` → scheme and params. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (m === null) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  for (let p = re.exec(m[2]!); p !== null; p = re.exec(m[2]!)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}
