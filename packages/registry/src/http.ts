/**
 * One HTTP GET over node:http/https, with a deadline, a body size bound and keep-alive agents.
 * Node's fetch (undici) cannot be given the system's CA file without the undici package, and
 * the registry client needs nothing of fetch beyond a GET.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';

export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface GetOptions {
  headers?: Record<string, string>;
  /** Whole request (connect, headers, body) must finish in this time. */
  timeoutMs: number;
  /** Refuse a body larger than this (the transfer is cut off). */
  maxBytes: number;
}

/** A transfer that failed in a way a retry may cure (reset, timeout, short body). */
export class TransientHttpError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientHttpError';
  }
}

/** Debian's CA bundle, which update-ca-certificates keeps with the host's own additions. */
const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

let caList: string[] | undefined;
/**
 * Node's bundled roots, the system's bundle, and $SSL_CERT_FILE (OpenSSL's variable, which curl
 * and Go's TLS honour too): a registry with a private CA is trusted the way other tools trust it.
 */
function systemCas(): string[] {
  if (caList !== undefined) return caList;
  const extra: string[] = [];
  const envFile = process.env.SSL_CERT_FILE;
  if (envFile !== undefined && envFile !== '') {
    try {
      extra.push(readFileSync(envFile, 'utf8'));
    } catch {
      // a missing file adds nothing, as for OpenSSL
    }
  }
  for (const f of SYSTEM_CA_FILES) {
    try {
      extra.push(readFileSync(f, 'utf8'));
      break;
    } catch {
      // try the next location
    }
  }
  caList = [...rootCertificates, ...extra];
  return caList;
}

const agents: { http?: http.Agent; https?: https.Agent } = {};
function agentFor(protocol: string): http.Agent {
  if (protocol === 'http:') return (agents.http ??= new http.Agent({ keepAlive: true, maxSockets: 8 }));
  return (agents.https ??= new https.Agent({ keepAlive: true, maxSockets: 8, ca: systemCas() }));
}

/** Close idle keep-alive connections (a process that is done with the registry). */
export function closeIdleConnections(): void {
  agents.http?.destroy();
  agents.https?.destroy();
  delete agents.http;
  delete agents.https;
}

export function httpGet(url: URL, options: GetOptions): Promise<HttpResponse> {
  const mod = url.protocol === 'http:' ? http : https;
  return new Promise<HttpResponse>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, res?: HttpResponse) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err !== undefined) {
        req.destroy();
        reject(err);
      } else resolve(res!);
    };
    const req = mod.get(url, { headers: options.headers ?? {}, agent: agentFor(url.protocol) }, (res) => {
      const chunks: Buffer[] = [];
      let total = 0;
      const declared = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
      if (declared !== undefined && declared > options.maxBytes) {
        res.destroy();
        finish(new Error(`${url.href}: response of ${declared} bytes exceeds the limit of ${options.maxBytes}`));
        return;
      }
      res.on('data', (c: Buffer) => {
        total += c.length;
        if (total > options.maxBytes) {
          res.destroy();
          finish(new Error(`${url.href}: response exceeds the limit of ${options.maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', (err) => finish(new TransientHttpError(`${url.href}: ${err.message}`, { cause: err })));
      res.on('aborted', () => finish(new TransientHttpError(`${url.href}: connection closed mid-body`)));
      res.on('end', () => {
        if (!res.complete) return finish(new TransientHttpError(`${url.href}: connection closed mid-body`));
        const body = Buffer.concat(chunks, total);
        if (declared !== undefined && body.length !== declared) {
          return finish(new TransientHttpError(`${url.href}: short body (${body.length} of ${declared} bytes)`));
        }
        finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A certificate that does not verify will not verify on the next try either.
      const tlsRefusal = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(err.code ?? '');
      finish(tlsRefusal ? new Error(`${url.href}: ${err.message}`, { cause: err }) : new TransientHttpError(`${url.href}: ${err.message}`, { cause: err }));
    });
    const timer = setTimeout(() => finish(new TransientHttpError(`${url.href}: no complete answer within ${options.timeoutMs} ms`)), options.timeoutMs);
  });
}
