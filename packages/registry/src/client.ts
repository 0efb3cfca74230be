/**
 * A client of the OCI distribution API (pull side only): manifests, small blobs, and byte ranges
 * of blobs, with authentication, redirects, and retries with backoff for what a retry may cure
 * (connection errors, timeouts, short bodies, 5xx, 429, 408).
 */
import { isIP } from 'node:net';
import { basicAuthorization, findCredentials, parseChallenge, type Credentials } from './auth.js';
import { RegistryError, RegistryHttpError, RegistryUnavailableError } from './errors.js';
import { httpGet, TransientHttpError, type HttpResponse } from './http.js';

/** What a process needs to reach one repository: serialisable, holds no secret. */
export interface RemoteRepository {
  /** `host[:port]`. */
  readonly registry: string;
  readonly repository: string;
  /** Plain HTTP (loopback registries only). */
  readonly insecure?: boolean;
  /** The auth file credentials were found in at resolve time (read again by whoever fetches). */
  readonly authFile?: string;
}

export interface RetryPolicy {
  /** Tries per request. */
  readonly attempts: number;
  /** Deadline of one try. */
  readonly timeoutMs: number;
  /** Wait before the 2nd try; doubled for each further one. */
  readonly backoffMs: number;
}

function envNumber(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** Defaults, adjustable by ATOMFS_REGISTRY_ATTEMPTS / _TIMEOUT_MS / _BACKOFF_MS (tests shorten them). */
export function defaultRetryPolicy(): RetryPolicy {
  return {
    attempts: Math.floor(envNumber('ATOMFS_REGISTRY_ATTEMPTS', 4)),
    timeoutMs: envNumber('ATOMFS_REGISTRY_TIMEOUT_MS', 15_000),
    backoffMs: envNumber('ATOMFS_REGISTRY_BACKOFF_MS', 200),
  };
}

/** The longest a request can take under `p`, every try timing out. */
export function worstCaseMs(p: RetryPolicy): number {
  let total = 0;
  for (let i = 0; i < p.attempts; i++) total += p.timeoutMs + (i > 0 ? p.backoffMs * 2 ** (i - 1) : 0);
  return total;
}

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost']);

/** Whether `host[:port]` names this machine (the only place plain HTTP is allowed to go). */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
  if (LOOPBACK_NAMES.has(host.toLowerCase())) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;

export interface GetRequest {
  /** Path below /v2/<repository>/ (e.g. `manifests/v1`), or an absolute URL. */
  path: string;
  headers?: Record<string, string>;
  maxBytes: number;
  /** Accept these statuses as success (default 200). */
  ok?: readonly number[];
}

export class RegistryClient {
  readonly base: URL;
  private authorization: string | undefined;
  private credentials: Credentials | undefined;
  private credentialsLooked = false;
  private readonly policy: RetryPolicy;

  constructor(
    readonly repo: RemoteRepository,
    policy?: RetryPolicy,
  ) {
    if (repo.insecure === true && !isLoopbackRegistry(repo.registry)) {
      throw new RegistryError(`refusing plain HTTP to ${repo.registry}: --insecure is for registries on this machine (loopback) only`);
    }
    this.base = new URL(`${repo.insecure === true ? 'http' : 'https'}://${repo.registry}/v2/${repo.repository}/`);
    this.policy = policy ?? defaultRetryPolicy();
  }

  get retryPolicy(): RetryPolicy {
    return this.policy;
  }

  /** GET with retries; 401 is answered once per request with the challenge's credentials. */
  async get(req: GetRequest): Promise<HttpResponse> {
    const ok = req.ok ?? [200];
    let url = new URL(req.path, this.base);
    let authTried = false;
    let redirects = 0;
    let attempt = 0;
    let lastError: unknown;
    for (;;) {
      if (attempt >= this.policy.attempts) throw new RegistryUnavailableError(url.href, attempt, lastError);
      if (attempt > 0) await sleep(this.policy.backoffMs * 2 ** (attempt - 1));
      attempt++;
      let res: HttpResponse;
      try {
        // Authorization goes only to the registry itself, never along a redirect to another host.
        const sameHost = url.host === this.base.host;
        const headers = { ...(req.headers ?? {}), ...(sameHost && this.authorization !== undefined ? { Authorization: this.authorization } : {}) };
        res = await httpGet(url, { headers, timeoutMs: this.policy.timeoutMs, maxBytes: Math.max(req.maxBytes, MAX_ERROR_BODY) });
      } catch (err) {
        if (err instanceof TransientHttpError) {
          lastError = err;
          continue;
        }
        throw new RegistryError((err as Error).message, { cause: err });
      }
      if (ok.includes(res.status)) {
        if (res.body.length > req.maxBytes) throw new RegistryError(`${url.href}: response of ${res.body.length} bytes exceeds the limit of ${req.maxBytes}`);
        return res;
      }
      if ([301, 302, 303, 307, 308].includes(res.status) && typeof res.headers.location === 'string') {
        if (++redirects > MAX_REDIRECTS) throw new RegistryHttpError(url.href, res.status, 'too many redirects');
        url = new URL(res.headers.location, url);
        attempt--;
        continue;
      }
      if (res.status === 401 && !authTried && url.host === this.base.host) {
        authTried = true;
        await this.authenticate(res, url);
        attempt--;
        continue;
      }
      if (res.status >= 500 || res.status === 429 || res.status === 408) {
        lastError = new Error(`HTTP ${res.status}`);
        continue;
      }
      throw new RegistryHttpError(url.href, res.status, errorDetail(res));
    }
  }

  private creds(): Credentials | undefined {
    if (!this.credentialsLooked) {
      this.credentialsLooked = true;
      this.credentials = findCredentials(this.repo.registry, this.repo.authFile !== undefined ? [this.repo.authFile] : undefined)?.credentials;
    }
    return this.credentials;
  }

  private async authenticate(res: HttpResponse, url: URL): Promise<void> {
    const header = res.headers['www-authenticate'];
    const challenge = parseChallenge(Array.isArray(header) ? (header[0] ?? '') : (header ?? ''));
    const creds = this.creds();
    if (challenge?.scheme === 'basic') {
      if (creds === undefined) throw new RegistryHttpError(url.href, 401, `${this.repo.registry} wants a user name and password; none found in ${this.repo.authFile ?? 'the auth files (REGISTRY_AUTH_FILE, containers auth.json, ~/.docker/config.json)'}`);
      this.authorization = basicAuthorization(creds);
      return;
    }
    if (challenge?.scheme !== 'bearer' || challenge.params.realm === undefined) {
      throw new RegistryHttpError(url.href, 401, `unsupported authentication challenge ${JSON.stringify(String(header ?? ''))}`);
    }
    const realm = new URL(challenge.params.realm);
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && isLoopbackRegistry(realm.host))) {
      throw new RegistryError(`refusing token realm ${realm.href}: not HTTPS`);
    }
    if (challenge.params.service !== undefined) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.set('scope', challenge.params.scope ?? `repository:${this.repo.repository}:pull`);
    const tokenRes = await httpGet(realm, {
      headers: creds !== undefined ? { Authorization: basicAuthorization(creds) } : {},
      timeoutMs: this.policy.timeoutMs,
      maxBytes: MAX_ERROR_BODY,
    }).catch((err: Error) => {
      throw new RegistryError(`token request to ${realm.origin}${realm.pathname}: ${err.message}`, { cause: err });
    });
    if (tokenRes.status !== 200) throw new RegistryHttpError(`${realm.origin}${realm.pathname}`, tokenRes.status, errorDetail(tokenRes));
    let token: unknown;
    try {
      const doc = JSON.parse(tokenRes.body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = doc.token ?? doc.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') throw new RegistryError(`token request to ${realm.origin}${realm.pathname}: the answer holds no token`);
    this.authorization = `Bearer ${token}`;
  }
}

/** The first error of a distribution error body (`{"errors":[{"code":..,"message":..}]}`), one line. */
function errorDetail(res: HttpResponse): string {
  try {
    const doc = JSON.parse(res.body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    const e = doc.errors?.[0];
    if (e !== undefined) return `${String(e.code ?? '')}${e.message !== undefined ? ` ${String(e.message)}` : ''}`.trim().slice(0, 300);
  } catch {
    // not JSON
  }
  return '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
