/**
 * Issue 19: images mounted and read straight from an OCI registry.
 *
 * A real registry (Debian's docker-registry, distribution 2.8) runs on 127.0.0.1 with its
 * storage in the test's temp dir; our stacker-format layouts (mksquashfs + veritysetup format,
 * written by @atomfs/oci's writeLayout) are pushed to it by skopeo. Then:
 *  - a mount of docker://… shows what a mount of the local layout shows (every entry, every
 *    byte); ls --json, cat and verify of docker://… agree with the layout's;
 *  - a blob tampered in the registry's storage reads as EIO (only the damaged file) and verify
 *    says CORRUPTION FOUND; a layer without root hash is refused unless --allow-missing-verity;
 *  - with the registry killed, an uncached read fails with EIO in bounded time and umount is
 *    prompt; once it is back, reads work again; connections cut mid-body are retried;
 *  - two mounts share one cache; pull completes a partly fetched blob; the cache stays bounded.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ATOMFS_BIN, forceCleanUnder, serversUnder } from './atomfs-cli.js';
import { packLayer, writeImage } from './oci-images.js';
import { chmodDevFuse, compareSnapshots, ensureTestUser, generateTree, isMounted, makeTempDir, processCleanup, run, runAsUserInUserns, runSync, sleepSync, snapshotDir, useCleanup } from './lib/index.js';

const REPO = 'atomfs-test/img';

interface Cli {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

let work = '';
let layout = '';
let registry: Registry;
let proxy: CuttingProxy;
let manifestDigest = '';

/** `atomfs ARGS` with the cache dir and registry retry settings given. */
async function atomfs(args: readonly string[], env: Record<string, string>, timeoutMs = 120_000): Promise<Cli> {
  const t0 = Date.now();
  const r = await run([process.execPath, ATOMFS_BIN, ...args], {
    allowFail: true,
    timeoutMs,
    env: { ...process.env, ATOMFS_TEST_RUN_DIR: join(work, 'run'), ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8'), ms: Date.now() - t0 };
}

async function atomfsOk(args: readonly string[], env: Record<string, string>): Promise<Cli> {
  const r = await atomfs(args, env);
  assert.equal(r.status, 0, `atomfs ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return r;
}

/** A fresh cache dir, and the retry settings that keep fault tests short. */
function cacheEnv(name: string): Record<string, string> {
  const dir = join(work, 'cache', name);
  return { ATOMFS_CACHE_DIR: dir, ATOMFS_REGISTRY_ATTEMPTS: '3', ATOMFS_REGISTRY_TIMEOUT_MS: '3000', ATOMFS_REGISTRY_BACKOFF_MS: '100' };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** docker-registry serve on 127.0.0.1:port with its storage under `dir`; start() and kill() as a test wants. */
class Registry {
  child: ChildProcess | undefined;
  readonly storage: string;
  private readonly config: string;

  constructor(
    readonly dir: string,
    readonly port: number,
    extraConfig = '',
    private readonly scheme: 'http' | 'https' = 'http',
  ) {
    this.storage = join(dir, 'storage');
    this.config = join(dir, 'config.yml');
    mkdirSync(this.storage, { recursive: true });
    writeFileSync(
      this.config,
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${this.storage}\nhttp:\n  addr: 127.0.0.1:${port}\n${extraConfig}`,
    );
  }

  async start(): Promise<void> {
    const child = spawn('docker-registry', ['serve', this.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${err}`);
      const ok =
        this.scheme === 'http'
          ? await fetch(`http://127.0.0.1:${this.port}/v2/`).then(
              (r) => r.status === 200 || r.status === 401,
              () => false,
            )
          : await new Promise<boolean>((resolve) => {
              const c = connect(this.port, '127.0.0.1', () => {
                c.destroy();
                resolve(true);
              });
              c.on('error', () => resolve(false));
            });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`docker-registry did not answer on port ${this.port}: ${err}`);
  }

  kill(): void {
    const c = this.child;
    this.child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    c.kill('SIGKILL');
    const end = Date.now() + 5000;
    while (Date.now() < end && runSync(['kill', '-0', String(c.pid)], { allowFail: true }).status === 0) sleepSync(20);
  }

  /** Path of a blob's bytes in distribution's filesystem storage. */
  blobPath(digest: string): string {
    const hex = digest.slice('sha256:'.length);
    return join(this.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  }
}

/**
 * A TCP proxy in front of the registry that, while `cutNext` > 0, forwards a response only up
 * to `cutAfter` bytes and then resets the connection: a transfer dying mid-body.
 */
class CuttingProxy {
  cutNext = 0;
  cutAfter = 0;
  /** Accept connections and requests but never forward them: a registry that hangs. */
  stall = false;
  cuts = 0;
  port = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly target: number) {
    this.server = createServer((client) => {
      this.sockets.add(client);
      const upstream = connect(this.target, '127.0.0.1');
      this.sockets.add(upstream);
      let cutAt = -1;
      let sent = 0;
      client.on('data', (d: Buffer) => {
        if (this.stall) return;
        if (cutAt < 0 && this.cutNext > 0 && d.includes('Range:') && d.includes('/blobs/')) {
          this.cutNext--;
          cutAt = this.cutAfter;
        }
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        if (cutAt >= 0 && sent + d.length > cutAt) {
          client.write(d.subarray(0, Math.max(0, cutAt - sent)));
          this.cuts++;
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        sent += d.length;
        client.write(d);
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => {
      this.port = (this.server.address() as { port: number }).port;
      resolve();
    }));
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

function ref(tag: string, port = registry.port): string {
  return `docker://127.0.0.1:${port}/${REPO}:${tag}`;
}

/** Offset of `needle` in `file` (the first 64 bytes of a file's content inside a layer blob). */
function offsetOf(file: string, needle: Buffer): number {
  const hay = readFileSync(file);
  const at = hay.indexOf(needle);
  assert.ok(at >= 0, `${needle.length} bytes not found in ${file}`);
  return at;
}

function flipByte(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Mount `image` at a new dir under work; unmounted (forcibly if need be) at test end. */
async function mountAt(name: string, args: readonly string[], env: Record<string, string>, stack: ReturnType<typeof useCleanup>, insecure = true): Promise<string> {
  const mp = join(work, 'mnt', name);
  mkdirSync(mp, { recursive: true });
  stack.add(`umount ${mp}`, () => {
    if (isMounted(mp)) runSync([process.execPath, ATOMFS_BIN, 'umount', mp], { allowFail: true, env: { ...process.env, ATOMFS_TEST_RUN_DIR: join(work, 'run') } });
    if (isMounted(mp)) runSync(['umount', '-l', mp], { allowFail: true });
  });
  await atomfsOk(['mount', ...(insecure ? ['--insecure'] : []), ...args, mp], env);
  return mp;
}

/** The random payload of the `big` file of the tamper image, and that image's layer blob. */
let bigFile: Buffer;
let bigLayerFile = '';
let bigLayerDigest = '';

describe('atomfs and a docker:// registry (docker-registry + skopeo on loopback)', () => {
  before(async () => {
    const stack = processCleanup;
    work = makeTempDir('registry', stack);
    stack.add('registry test leftovers', () => forceCleanUnder(work));
    layout = join(work, 'oci');
    // A varied tree (every file type, hard links, xattrs, odd names) plus a second layer.
    const base = join(work, 'base');
    await generateTree(base, { medium: false });
    const upper = join(work, 'upper');
    mkdirSync(join(upper, 'added'), { recursive: true });
    writeFileSync(join(upper, 'added', 'three-mib'), randomBytes(3 << 20));
    writeFileSync(join(upper, 'added', 'small'), 'top layer\n');
    const l1 = await packLayer(base, join(work, 'l1.sqfs'));
    const l2 = await packLayer(upper, join(work, 'l2.sqfs'));
    await writeImage(layout, 'img', [l1, l2]);
    await writeImage(layout, 'nohash', [l2], { noRootHash: true });
    // The tamper image: its own blob (distribution stores a blob once for all repos).
    const tdir = join(work, 'tamper');
    mkdirSync(tdir);
    bigFile = randomBytes(2 << 20);
    writeFileSync(join(tdir, 'big'), bigFile);
    writeFileSync(join(tdir, 'small'), 'intact\n');
    const lt = await packLayer(tdir, join(work, 'lt.sqfs'));
    const written = await writeImage(layout, 'tamper', [lt]);
    bigLayerFile = lt.file;
    bigLayerDigest = written.layers[0]!.digest;

    registry = new Registry(join(work, 'registry'), await freePort());
    stack.add('stop docker-registry', () => registry.kill());
    await registry.start();
    for (const tag of ['img', 'nohash', 'tamper']) {
      await run(['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://127.0.0.1:${registry.port}/${REPO}:${tag}`], { timeoutMs: 120_000 });
    }
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    manifestDigest = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'img')!.digest;
    proxy = new CuttingProxy(registry.port);
    await proxy.listen();
    stack.add('stop proxy', () => proxy.close());
  });

  after(() => {
    // The registry and the proxy would keep this process alive.
    registry?.kill();
    proxy?.close();
    const left = serversUnder(work);
    forceCleanUnder(work);
    assert.deepEqual(left, [], 'servers left running');
  });

  test('a mount from the registry shows exactly what a mount of the local layout shows', async (t) => {
    const stack = useCleanup(t);
    const env = cacheEnv('compare');
    const local = await mountAt('local', ['--backend', 'fuse', `${layout}:img`], env, stack);
    const remote = await mountAt('remote', [ref('img')], env, stack);
    const want = await snapshotDir(local);
    const got = await snapshotDir(remote);
    assert.ok(want.size > 50, `the local mount shows ${want.size} entries`);
    assert.deepEqual(compareSnapshots(want, got), []);
    const list = await atomfsOk(['list', '--json'], env);
    assert.match(list.stdout.toString(), new RegExp(`"image":"docker://127\\.0\\.0\\.1:${registry.port}/${REPO}:img"`));
    assert.match((await atomfsOk(['verify', remote], env)).stdout.toString(), /: OK\n.*: OK\n$/s);
    // Cached blobs are private to their owner.
    const blobs = join(env.ATOMFS_CACHE_DIR!, 'blobs', 'sha256');
    assert.equal(statSync(blobs).mode & 0o077, 0);
    for (const f of readdirSync(blobs)) assert.equal(statSync(join(blobs, f)).mode & 0o077, 0, f);
    await atomfsOk(['umount', remote], env);
    assert.equal(isMounted(remote), false);
  });

  test('ls --json, cat and verify of docker:// agree with the local layout; a digest reference works', async () => {
    const env = cacheEnv('read');
    const want = await atomfsOk(['ls', '--json', `${layout}:img`], env);
    const got = await atomfsOk(['ls', '--json', '--insecure', ref('img')], env);
    assert.equal(got.stdout.toString(), want.stdout.toString());
    const cat = await atomfsOk(['cat', '--insecure', ref('img'), '/added/three-mib'], env);
    assert.equal(sha256(cat.stdout), sha256(readFileSync(join(work, 'upper', 'added', 'three-mib'))));
    const byDigest = await atomfsOk(['cat', '--insecure', `docker://127.0.0.1:${registry.port}/${REPO}@${manifestDigest}`, '/added/small'], env);
    assert.equal(byDigest.stdout.toString(), 'top layer\n');
    const wrong = await atomfs(['ls', '--insecure', `docker://127.0.0.1:${registry.port}/${REPO}@sha256:${'0'.repeat(64)}`], env);
    assert.equal(wrong.status, 1, wrong.stderr);
    assert.match(wrong.stderr, /^Error: .*\n$/);
    const v = await atomfsOk(['verify', '--insecure', ref('img')], env);
    assert.match(v.stdout.toString(), /: OK\n.*: OK\n$/s);
    // Without --insecure the client speaks HTTPS, which a plain-HTTP registry cannot answer.
    const tls = await atomfs(['ls', ref('img')], env);
    assert.equal(tls.status, 1);
    assert.match(tls.stderr, /^Error: /);
    const unknown = await atomfs(['ls', '--insecure', ref('nosuchtag')], env);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /^Error: .*404.*MANIFEST_UNKNOWN/);
  });

  test('a layer without root hash is refused unless --allow-missing-verity', async (t) => {
    const stack = useCleanup(t);
    const env = cacheEnv('nohash');
    const mp = join(work, 'mnt', 'nohash');
    mkdirSync(mp, { recursive: true });
    const r = await atomfs(['mount', '--insecure', ref('nohash'), mp], env);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^Error: sha256:[0-9a-f]{64} has no root hash/);
    assert.equal(isMounted(mp), false);
    const ls = await atomfs(['ls', '--insecure', ref('nohash')], env);
    assert.equal(ls.status, 1);
    const m = await mountAt('nohash-ok', ['--allow-missing-verity', ref('nohash')], env, stack);
    assert.equal(readFileSync(join(m, 'added', 'small'), 'utf8'), 'top layer\n');
  });

  test('mounts share one cache: two read it at once, a third serves what they fetched with the registry gone', async (t) => {
    const stack = useCleanup(t);
    const env = cacheEnv('shared');
    const a = await mountAt('share-a', [ref('img')], env, stack);
    const b = await mountAt('share-b', [ref('img')], env, stack);
    const c = await mountAt('share-c', [ref('img')], env, stack);
    // Two servers fetching the same chunks into the same files at the same time.
    const [sa, sb] = await Promise.all([snapshotDir(a), snapshotDir(b)]);
    assert.deepEqual(compareSnapshots(sa, sb), []);
    registry.kill();
    try {
      const sc = await snapshotDir(c);
      assert.deepEqual(compareSnapshots(sa, sc), []);
    } finally {
      await registry.start();
    }
  });

  test('transfers cut mid-body are retried and give the right bytes', async () => {
    const env = cacheEnv('cut');
    proxy.cuts = 0;
    proxy.cutNext = 2;
    proxy.cutAfter = 1000;
    const cat = await atomfsOk(['cat', '--insecure', ref('img', proxy.port), '/added/three-mib'], env);
    assert.equal(proxy.cuts, 2);
    assert.equal(sha256(cat.stdout), sha256(readFileSync(join(work, 'upper', 'added', 'three-mib'))));
  });

  test('registry killed: an uncached read is EIO in bounded time, umount is prompt; back up: reads work', async (t) => {
    const stack = useCleanup(t);
    const env = cacheEnv('dead');
    const mp = await mountAt('dead', [ref('tamper')], env, stack);
    assert.equal(readFileSync(join(mp, 'small'), 'utf8'), 'intact\n');
    registry.kill();
    try {
      const t0 = Date.now();
      const r = await run(['cat', join(mp, 'big')], { allowFail: true, timeoutMs: 60_000, maxOutput: 8 << 20 });
      const ms = Date.now() - t0;
      assert.notEqual(r.status, 0);
      assert.match(r.stderr.toString(), /Input\/output error/);
      // 3 tries of at most 3 s plus backoff; connection refused fails at once.
      assert.ok(ms < 15_000, `the failed read took ${ms} ms`);
      t.diagnostic(`registry killed: failed read ${ms} ms`);
      await registry.start();
      // Misses fail at once for a second after a failure (a hanging registry would cost every
      // kernel read request the whole retry sequence), then one try each until one succeeds.
      await new Promise((res) => setTimeout(res, 1100));
      assert.equal(sha256(readFileSync(join(mp, 'big'))), sha256(bigFile));
      // Dead again, with everything cached: still served; umount does not wait for the registry.
      registry.kill();
      assert.equal(sha256(readFileSync(join(mp, 'big'))), sha256(bigFile));
      const u = await atomfsOk(['umount', mp], env);
      assert.ok(u.ms < 5000, `umount took ${u.ms} ms`);
    } finally {
      if (registry.child === undefined) await registry.start();
    }
  });

  test('a hanging registry: an uncached read is EIO after the retries time out, umount does not wait', async (t) => {
    const stack = useCleanup(t);
    const env = cacheEnv('stall');
    const mp = await mountAt('stall', [ref('tamper', proxy.port)], env, stack);
    stack.add('unstall the proxy', () => (proxy.stall = false));
    proxy.stall = true;
    const t0 = Date.now();
    const r = await run(['cat', join(mp, 'big')], { allowFail: true, timeoutMs: 90_000, maxOutput: 8 << 20 });
    const ms = Date.now() - t0;
    assert.notEqual(r.status, 0);
    assert.match(r.stderr.toString(), /Input\/output error/);
    // 3 tries of 3 s each (plus backoff) for the first request the kernel makes; the next ones
    // fail at once (the registry was just found down).
    assert.ok(ms < 20_000, `the failed read took ${ms} ms`);
    // A read in flight (a one-try probe of the still hanging registry): umount answers at once.
    await new Promise((res) => setTimeout(res, 1200));
    const reader = run(['cat', join(mp, 'big')], { allowFail: true, timeoutMs: 90_000, maxOutput: 8 << 20 });
    await new Promise((res) => setTimeout(res, 300));
    const u = await atomfs(['umount', mp], env);
    t.diagnostic(`hanging registry: failed read ${ms} ms; umount during a stuck read ${u.ms} ms (exit ${u.status}: ${u.stderr.trim()})`);
    assert.ok(u.ms < 5000, `umount took ${u.ms} ms`);
    proxy.stall = false;
    const rr = await reader;
    t.diagnostic(`the read in flight: exit ${rr.status} ${rr.stderr.toString().trim()}`);
  });

  test('an unprivileged user in a user namespace mounts from the registry with a cache of its own', async (t) => {
    const stack = useCleanup(t);
    const user = ensureTestUser('atomfs-test-registry', processCleanup);
    chmodDevFuse();
    const dir = makeTempDir('registry-user', stack);
    stack.add('registry user leftovers', () => forceCleanUnder(dir));
    chmodSync(dir, 0o755);
    const cacheHome = join(dir, 'cache-home');
    const mp = join(dir, 'mp');
    mkdirSync(cacheHome);
    mkdirSync(mp);
    chownSync(cacheHome, user.uid, user.gid);
    chownSync(mp, user.uid, user.gid);
    const script = `${process.execPath} ${ATOMFS_BIN} mount --insecure ${ref('img')} ${mp} && cat ${mp}/added/small && sha256sum ${mp}/added/three-mib && ${process.execPath} ${ATOMFS_BIN} umount ${mp}`;
    const r = await runAsUserInUserns(user.name, ['env', `XDG_CACHE_HOME=${cacheHome}`, 'sh', '-ec', script], { timeoutMs: 120_000 });
    assert.equal(r.status, 0, r.stderr.toString());
    const out = r.stdout.toString();
    assert.match(out, /^top layer\n/);
    assert.ok(out.includes(sha256(readFileSync(join(work, 'upper', 'added', 'three-mib')))), out);
    const blobs = join(cacheHome, 'atomfs', 'blobs', 'sha256');
    const files = readdirSync(blobs);
    assert.ok(files.length >= 4, files.join(' '));
    for (const f of files) assert.equal(statSync(join(blobs, f)).uid, user.uid, f);
  });

  test('token authentication: credentials from an auth file buy a bearer token from the realm', async (t) => {
    const stack = useCleanup(t);
    const dir = join(work, 'auth');
    mkdirSync(dir);
    // The token issuer's key and self-signed certificate (distribution trusts tokens whose x5c
    // chain ends in its rootcertbundle).
    await run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=atomfs-test-token']);
    const key = createPrivateKey(readFileSync(join(dir, 'key.pem')));
    const certDer = Buffer.from(readFileSync(join(dir, 'cert.pem'), 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
    const asked: string[] = [];
    const tokenServer = createHttpServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const auth = req.headers.authorization ?? '';
      asked.push(`${url.searchParams.get('scope')} ${auth === '' ? 'anonymous' : 'basic'}`);
      if (auth !== `Basic ${Buffer.from('tester:s3cret').toString('base64')}`) {
        res.writeHead(401).end();
        return;
      }
      const actions: { type: string; name: string; actions: string[] }[] = [];
      for (const scope of url.searchParams.getAll('scope')) {
        const [type, name, acts] = scope.split(':');
        actions.push({ type: type!, name: name!, actions: (acts ?? '').split(',') });
      }
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }));
      const claims = b64url(JSON.stringify({ iss: 'atomfs-test-issuer', sub: 'tester', aud: 'atomfs-test', exp: now + 600, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access: actions }));
      const signature = b64url(sign('sha256', Buffer.from(`${header}.${claims}`), key));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${signature}` }));
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
    stack.add('stop the token server', () => tokenServer.close());
    const tport = (tokenServer.address() as { port: number }).port;
    const authed = new Registry(
      join(dir, 'registry'),
      await freePort(),
      `auth:\n  token:\n    realm: http://127.0.0.1:${tport}/token\n    service: atomfs-test\n    issuer: atomfs-test-issuer\n    rootcertbundle: ${join(dir, 'cert.pem')}\n`,
    );
    stack.add('stop the token registry', () => authed.kill());
    await authed.start();
    const remote = `docker://127.0.0.1:${authed.port}/${REPO}:img`;
    await run(['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'tester:s3cret', `oci:${layout}:img`, remote]);
    const env = cacheEnv('token');
    // No credentials: the realm refuses an anonymous token.
    const none = await atomfs(['ls', '--insecure', remote], { ...env, REGISTRY_AUTH_FILE: join(dir, 'missing.json'), HOME: dir });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /^Error: .*HTTP 401/);
    const authFile = join(dir, 'auth.json');
    writeFileSync(authFile, JSON.stringify({ auths: { [`127.0.0.1:${authed.port}`]: { auth: Buffer.from('tester:s3cret').toString('base64') } } }), { mode: 0o600 });
    const withAuth = { ...env, REGISTRY_AUTH_FILE: authFile };
    const ls = await atomfsOk(['ls', '--json', '--insecure', remote], withAuth);
    assert.equal(ls.stdout.toString(), (await atomfsOk(['ls', '--json', `${layout}:img`], env)).stdout.toString());
    // The FUSE server fetches with the same credentials; its state names the file, holds no secret.
    const mp = await mountAt('token', [remote], withAuth, stack);
    // Read by another process: the token server runs on this one's event loop.
    const sum = await run(['sha256sum', join(mp, 'added', 'three-mib')]);
    assert.equal(sum.stdout.toString().split(' ')[0], sha256(readFileSync(join(work, 'upper', 'added', 'three-mib'))));
    const state = runSync(['grep', '-rl', 's3cret', join(work, 'run')], { allowFail: true });
    assert.equal(state.stdout.toString(), '', 'a secret in the mount state');
    assert.ok(asked.some((a) => a === `repository:${REPO}:pull basic`), asked.join('\n'));
  });

  test('HTTPS: a registry whose CA is in SSL_CERT_FILE is trusted; unknown certificates and plain HTTP elsewhere are refused', async (t) => {
    const stack = useCleanup(t);
    const dir = join(work, 'tls');
    mkdirSync(dir);
    await run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const tls = new Registry(join(dir, 'registry'), await freePort(), `  tls:\n    certificate: ${join(dir, 'cert.pem')}\n    key: ${join(dir, 'key.pem')}\n`, 'https');
    stack.add('stop the TLS registry', () => tls.kill());
    await tls.start();
    const remote = `docker://127.0.0.1:${tls.port}/${REPO}:img`;
    await run(['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:img`, remote]);
    const env = cacheEnv('tls');
    const untrusted = await atomfs(['ls', remote], env);
    assert.equal(untrusted.status, 1);
    assert.match(untrusted.stderr, /^Error: .*(self[- ]signed|certificate)/i);
    const trusted = { ...env, SSL_CERT_FILE: join(dir, 'cert.pem') };
    const ls = await atomfsOk(['ls', '--json', remote], trusted);
    assert.equal(ls.stdout.toString(), (await atomfsOk(['ls', '--json', `${layout}:img`], env)).stdout.toString());
    const mp = await mountAt('tls', [remote], trusted, stack, false);
    const sum = await run(['sha256sum', join(mp, 'added', 'three-mib')]);
    assert.equal(sum.stdout.toString().split(' ')[0], sha256(readFileSync(join(work, 'upper', 'added', 'three-mib'))));
    // --insecure (plain HTTP) is for loopback registries only.
    const far = await atomfs(['ls', '--insecure', `docker://registry.example.org/${REPO}:img`], env);
    assert.equal(far.status, 1);
    assert.match(far.stderr, /^Error: refusing plain HTTP to registry\.example\.org/);
  });

  test('pull fills the cache (completing a partial blob), checks digests, and the cache stays bounded', async () => {
    const env = cacheEnv('pull');
    // ls reads metadata only: part of the layers is fetched.
    await atomfsOk(['ls', '--insecure', ref('img')], env);
    const p = await atomfsOk(['pull', '--insecure', ref('img')], env);
    const m = /: 2 layers, ([0-9]+) bytes, ([0-9]+) fetched\n$/.exec(p.stdout.toString());
    assert.ok(m, p.stdout.toString());
    const total = Number(m[1]);
    const fetched = Number(m[2]);
    assert.ok(fetched > 0 && fetched < total, `pull after ls fetched ${fetched} of ${total}`);
    const again = await atomfsOk(['pull', '--insecure', ref('img')], env);
    assert.match(again.stdout.toString(), /, 0 fetched\n$/);
    // Pulled blobs equal the layout's.
    const idx = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as unknown;
    assert.ok(idx);
    for (const f of readdirSync(join(env.ATOMFS_CACHE_DIR!, 'blobs', 'sha256'))) {
      if (f.endsWith('.chunks')) continue;
      assert.equal(sha256(readFileSync(join(env.ATOMFS_CACHE_DIR!, 'blobs', 'sha256', f))), f);
      assert.ok(existsSync(join(layout, 'blobs', 'sha256', f)));
    }
    // A bound smaller than two images: pulling the other image drops the blobs of the first.
    const small = { ...env, ATOMFS_CACHE_MAX_BYTES: String(total) };
    await atomfsOk(['pull', '--insecure', ref('tamper')], small);
    const left = readdirSync(join(env.ATOMFS_CACHE_DIR!, 'blobs', 'sha256')).filter((f) => !f.endsWith('.chunks'));
    assert.ok(left.includes(bigLayerDigest.slice(7)), `the pulled image is kept: ${left.join(' ')}`);
    assert.ok(left.length < 3, `older blobs are dropped: ${left.join(' ')}`);
  });

  test('a blob tampered in the registry: EIO on the damaged file only, verify and pull refuse it', async (t) => {
    const stack = useCleanup(t);
    const env = cacheEnv('tamper');
    const stored = registry.blobPath(bigLayerDigest);
    const at = offsetOf(stored, bigFile.subarray(1 << 20, (1 << 20) + 64));
    assert.equal(at, offsetOf(bigLayerFile, bigFile.subarray(1 << 20, (1 << 20) + 64)));
    flipByte(stored, at + 10);
    stack.add('restore the tampered blob', () => flipByte(stored, at + 10));
    const mp = await mountAt('tamper', [ref('tamper')], env, stack);
    assert.equal(readFileSync(join(mp, 'small'), 'utf8'), 'intact\n');
    const r = await run(['cat', join(mp, 'big')], { allowFail: true, maxOutput: 8 << 20 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr.toString(), /Input\/output error/);
    const v = await atomfs(['verify', '--insecure', ref('tamper')], cacheEnv('tamper-verify'));
    assert.equal(v.status, 1);
    assert.match(v.stdout.toString(), /CORRUPTION FOUND/);
    const p = await atomfs(['pull', '--insecure', ref('tamper')], cacheEnv('tamper-pull'));
    assert.equal(p.status, 1);
    assert.match(p.stderr, /^Error: .*digest mismatch/);
    const c = await atomfs(['cat', '--insecure', ref('tamper'), '/big'], cacheEnv('tamper-cat'));
    assert.equal(c.status, 1);
    assert.match(c.stderr, /^Error: /);
    // The registry repaired, a cache still holding the bad bytes: mounts see EIO until pull
    // (which fetches a blob failing its digest once more) repairs it.
    flipByte(stored, at + 10);
    const healEnv = cacheEnv('tamper-heal');
    flipByte(stored, at + 10);
    await atomfs(['verify', '--insecure', ref('tamper')], healEnv); // caches the whole, bad, blob
    flipByte(stored, at + 10);
    const bad = await atomfs(['cat', '--insecure', ref('tamper'), '/big'], healEnv);
    assert.equal(bad.status, 1, 'the bad cached bytes are refused');
    const heal = await atomfsOk(['pull', '--insecure', ref('tamper')], healEnv);
    assert.match(heal.stdout.toString(), /fetched [0-9]+ bytes/);
    const good = await atomfsOk(['cat', '--insecure', ref('tamper'), '/big'], healEnv);
    assert.equal(sha256(good.stdout), sha256(bigFile));
    flipByte(stored, at + 10);
  });
});
