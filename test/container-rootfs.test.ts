/**
 * Issue 13: a mounted image is a working container rootfs. The image is a real Debian
 * (`debootstrap --variant=minbase`, 3 stacker layers with dm-verity root hashes, see
 * lib/debian-image.ts); every check runs real clients — the image's own find, setpriv, dpkg, sh;
 * systemd-nspawn; lxc-execute; lxc-usernsexec — on our mount and on the kernel's own mount of the
 * same layers (loop + squashfs per layer, overlayfs), and the answers must be the same:
 * - which uid may read / write / execute / search what (uids 0, 1000, 65534, access(2) through
 *   find's -readable/-writable/-executable, and real opens, reads, execs and directory walks);
 * - programs run as uid 1000 inside the rootfs print the same;
 * - as host root, device nodes and setuid programs work (no nosuid,nodev), and with
 *   `--nosuid --nodev` they are refused as on a kernel mount with those options;
 * - a subordinate-id user namespace as LXC makes it (lxc-usernsexec), a non-root user via
 *   `su -l` + `unshare -Umr` with no --metadir, `--upper DIR`, and container runtimes.
 * As host root `atomfs mount` runs with `--backend fuse` (what `auto` picks on this machine, which
 * has no device-mapper, for layers with root hashes); the tests check that it did.
 */
import assert from 'node:assert/strict';
import { appendFileSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  chmodDevFuse,
  debianImage,
  ensureTestUser,
  mountKernelStack,
  processCleanup,
  readMountinfo,
  run,
  runSync,
  useCleanup,
  type CleanupStack,
  type DebianImage,
  type KernelStack,
  type RunResult,
  type TestUser,
} from './lib/index.js';
import { ATOMFS_BIN, cleanAtomfsAtEnd, leftoversUnder } from './atomfs-cli.js';
import { makeSharedTempDir } from './oci-images.js';

const USER = 'atomfs-test-crfs';
/** The uids whose access is compared: root, the image's user (owns /home/user), nobody. */
const UIDS = [0, 1000, 65534] as const;
const CHROOT_ENV: NodeJS.ProcessEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', TZ: 'UTC', COLUMNS: '200' };
/** The subordinate ids lxc-usernsexec maps (as an LXC container config would). */
const SUBID_LINE = 'root:1000000:65536';
const SUBID_BASE = 1000000;
/**
 * Host-root mounts name the FUSE backend: it is what `auto` picks on this machine (root hashes,
 * no device-mapper), and on a host with device-mapper `auto` would take the kernel's dm-verity
 * path — the kernel stack these tests use as the reference.
 */
const FUSE_BACKEND = ['--backend', 'fuse'];

let img: DebianImage;
let work = '';
let runDir = '';
let kernel: KernelStack;
/** Our mount of the image as host root, default options. */
let ours = '';
let setupSeconds = 0;

before(async () => {
  const t0 = process.hrtime.bigint();
  img = await debianImage();
  // This machine ships /dev/fuse 0600 (test/run.sh opens it up too); distributions ship 0666.
  chmodDevFuse();
  work = makeSharedTempDir('crfs', processCleanup);
  cleanAtomfsAtEnd(processCleanup, work);
  runDir = join(work, 'run');
  mkdirSync(runDir);
  kernel = await mountKernelStack(img, mkdirIn(work, 'kernel'), {}, processCleanup);
  ours = mkdirIn(work, 'ours');
  await mountOurs([], ours, processCleanup);
  setupSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
});
after(() => processCleanup.run());

function mkdirIn(parent: string, name: string, mode = 0o755): string {
  const d = join(parent, name);
  mkdirSync(d, { mode });
  return d;
}

function atomfsEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ATOMFS_TEST_RUN_DIR: runDir };
}

function out(r: RunResult): string {
  return `exit ${r.status}\n--- stdout\n${r.stdout.toString('utf8')}--- stderr\n${r.stderr.toString('utf8')}`;
}

/** `atomfs mount ARGS REF MP` as host root (runtime dir in the work dir); umount registered on `stack`. */
async function mountOurs(args: readonly string[], mp: string, stack: CleanupStack): Promise<void> {
  stack.add(`atomfs umount ${mp}`, () => {
    if (readMountinfo().some((m) => m.mountpoint === mp)) runSync([process.execPath, ATOMFS_BIN, 'umount', mp], { env: atomfsEnv(), allowFail: true });
  });
  const r = await run([process.execPath, ATOMFS_BIN, 'mount', ...FUSE_BACKEND, ...args, img.ref, mp], { env: atomfsEnv(), allowFail: true });
  assert.equal(r.status, 0, `atomfs mount ${args.join(' ')} failed: ${out(r)}`);
}

/** The mountinfo line of `mp` (the top-most mount there). */
function mountOf(mp: string): { fstype: string; options: string } {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === mp);
  const line = lines.at(-1);
  assert.ok(line, `nothing mounted at ${mp}`);
  const f = line.split(' ');
  const sep = f.indexOf('-');
  return { fstype: f[sep + 1]!, options: `${f[5]},${f[sep + 3]}` };
}

/** argv running `argv` in `root` as uid:gid `uid` with no supplementary groups (the image's setpriv). */
function chrootAs(root: string, uid: number, argv: readonly string[]): string[] {
  return ['chroot', root, '/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv];
}

/** Run a chroot command line with a clean, fixed environment. */
async function runClean(argv: readonly string[]): Promise<RunResult> {
  return run(argv, { env: CHROOT_ENV, allowFail: true, timeoutMs: 180_000 });
}

function sortedLines(b: Buffer): string[] {
  return b.toString('utf8').split('\n').filter((l) => l !== '').sort();
}

/** The same command on the kernel's stack and on ours: equal exit status, stdout, stderr. */
async function sameOnBoth(makeArgv: (root: string) => string[], what: string, opts: { sort?: boolean; kernelRoot?: string; oursRoot?: string } = {}): Promise<{ k: RunResult; o: RunResult }> {
  const kRoot = opts.kernelRoot ?? kernel.mountpoint;
  const oRoot = opts.oursRoot ?? ours;
  const k = await runClean(makeArgv(kRoot));
  const o = await runClean(makeArgv(oRoot));
  const norm = (b: Buffer): string | string[] => (opts.sort ? sortedLines(b) : b.toString('utf8'));
  assert.deepEqual(
    { status: o.status, stdout: norm(o.stdout), stderr: norm(o.stderr) },
    { status: k.status, stdout: norm(k.stdout), stderr: norm(k.stderr) },
    `${what}: ours (actual) differs from the kernel stack (expected)`,
  );
  return { k, o };
}

test('the Debian image: cached build, 3 layers with root hashes, mounted by the FUSE path', (t) => {
  const b = img.build;
  t.diagnostic(`image ${img.ref} (${img.release}), ${img.fresh ? 'built now' : 'from the cache'}; its build: debootstrap ${b.debootstrap.toFixed(1)} s (${b.attempts} attempt(s)), layers ${b.layers.toFixed(1)} s, mksquashfs + veritysetup + layout ${b.pack.toFixed(1)} s, total ${b.total.toFixed(1)} s`);
  t.diagnostic(`setup of this file (image, kernel stack, atomfs mount): ${setupSeconds.toFixed(1)} s`);
  assert.equal(img.layers.length, 3);
  assert.equal(img.rootHashes.filter((h) => /^[0-9a-f]{64}$/.test(h)).length, 3);
  assert.equal(mountOf(ours).fstype, 'fuse.atomfs', 'the verified FUSE path');
  // The layer changes are there on the kernel's own view (so the comparisons below mean something).
  const k = kernel.mountpoint;
  assert.equal(existsSync(join(k, 'etc/motd')), false, 'file whiteout (layer 2)');
  assert.equal(existsSync(join(k, 'usr/share/man')), false, 'dir whiteout (layer 2)');
  assert.deepEqual(readdirSync(join(k, 'usr/share/doc')), [], 'opaque dir (layer 2), its one file whited out (layer 3)');
  assert.equal(readFileSync(join(k, 'etc/hostname'), 'utf8'), 'atomfs-debian-l3\n');
  assert.ok(statSync(join(k, 'etc/debian_version')).isDirectory(), 'file replaced by a dir (layer 3)');
  const priv = statSync(join(k, 'home/user/private'));
  assert.deepEqual([priv.uid, priv.mode & 0o7777], [1000, 0o600]);
  assert.equal(statSync(join(k, 'usr/local/bin/suid-id')).mode & 0o7777, 0o4755);
  assert.ok(lstatSync(join(k, 'dev/atomfs-zero')).isCharacterDevice());
  assert.equal(statSync(join(k, 'etc/shadow')).mode & 0o777, 0o640);
});

describe('access is decided as on the kernel stack', () => {
  // GNU find's -readable/-writable/-executable call access(2) for every entry; directories a uid
  // cannot read or search show up as find's errors (compared too).
  const findArgv = ['/usr/bin/find', '/', '(', '-readable', '-printf', 'r', '-o', '-printf', '-', ')', '(', '-writable', '-printf', 'w', '-o', '-printf', '-', ')', '(', '-executable', '-printf', 'x', '-o', '-printf', '-', ')', '-printf', ' %p\\n'];
  for (const uid of UIDS) {
    test(`uid ${uid}: access(2) of every path of the image, in a chroot`, async () => {
      const { k } = await sameOnBoth((root) => chrootAs(root, uid, findArgv), `find / as uid ${uid}`, { sort: true });
      const lines = sortedLines(k.stdout);
      assert.ok(lines.length > 5000, `find saw only ${lines.length} entries`);
      const perm = (p: string): string | undefined => lines.find((l) => l.endsWith(` ${p}`))?.slice(0, 3);
      if (uid === 0) assert.equal(perm('/etc/shadow'), 'r--');
      if (uid === 1000) assert.equal(perm('/home/user/private'), 'r--');
      if (uid === 65534) {
        assert.equal(perm('/etc/shadow'), '---', '/etc/shadow stays unreadable to nobody');
        assert.equal(perm('/home/user'), '---');
      }
    });
  }

  // Real opens: read a byte, list a dir, enter it, read the file inside, run the scripts of the
  // permission matrix. Run from the host (paths through the mountpoint), one process per uid.
  const probe = `
cd "$1" && shift
for p in "$@"; do
  r=- l=- s=- i=- x=-
  if [ -d "$p" ]; then
    ls -a -- "$p" >/dev/null 2>&1 && l=l
    (cd -- "$p") 2>/dev/null && s=s
    [ -e "$p/inner" ] && head -c 1 -- "$p/inner" >/dev/null 2>&1 && i=i
  else
    head -c 1 -- "$p" >/dev/null 2>&1 && r=r
    case "$p" in srv/modes/f-*) [ "$("./$p" 2>/dev/null)" = ran ] && x=x ;; esac
  fi
  echo "$r$l$s$i$x $p"
done`;
  for (const uid of UIDS) {
    test(`uid ${uid}: real opens, reads, listings and execs of a sample`, async () => {
      const sample = [
        'etc/shadow', 'etc/gshadow', 'etc/passwd', 'etc/issue', 'home/user', 'home/user/private', 'root', 'dev/atomfs-zero', 'usr/bin/expiry',
        ...readdirSync(join(kernel.mountpoint, 'srv/modes')).map((n) => `srv/modes/${n}`),
      ];
      assert.ok(sample.length > 200);
      const argv = (root: string): string[] => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'sh', '-c', probe, 'probe', root, ...sample];
      const k = await run(argv(kernel.mountpoint), { allowFail: true });
      const o = await run(argv(ours), { allowFail: true });
      assert.equal(k.status, 0, out(k));
      assert.deepEqual(o.stdout.toString('utf8').split('\n'), k.stdout.toString('utf8').split('\n'), `uid ${uid}: ours (actual) vs kernel (expected)`);
      const kt = k.stdout.toString('utf8');
      // The matrix really discriminates: some denied, some allowed for this uid.
      assert.match(kt, /^r---- etc\/passwd$/m);
      if (uid !== 0) assert.match(kt, /^----- etc\/shadow$/m);
      if (uid === 1000) assert.match(kt, /^r---- home\/user\/private$/m);
      if (uid === 65534) assert.match(kt, /^----- home\/user\/private$/m);
    });
  }
});

describe('programs in the rootfs', () => {
  for (const [what, argv] of [
    ['dpkg -l', ['/usr/bin/dpkg', '-l']],
    ['ls -l /', ['/bin/ls', '-l', '/']],
    ['ls -lnd of the permission matrix', ['/bin/sh', '-c', 'ls -lnd /home/user /srv/modes/*']],
    ['sh reading its files', ['/bin/sh', '-c', 'id; cat /etc/hostname /home/user/private; cat /etc/shadow; echo status $?']],
  ] as const) {
    test(`as uid 1000: ${what} prints what it prints on the kernel stack`, async () => {
      const { k } = await sameOnBoth((root) => chrootAs(root, 1000, argv), what);
      assert.equal(k.status, 0, out(k));
      assert.ok(k.stdout.length > 0);
    });
  }
});

describe('as host root: device nodes and setuid programs', () => {
  const devNull = ['/bin/sh', '-c', 'echo > /dev/null && echo written'];
  const zero = ['/bin/sh', '-c', 'head -c 3 /dev/atomfs-zero | od -An -tx1'];
  const suid = ['/usr/local/bin/suid-id'];

  test('default mount: /dev/null works and the setuid bit is effective, as on the kernel stack', async () => {
    assert.doesNotMatch(mountOf(ours).options, /\bnosuid\b|\bnodev\b/, 'host root: no nosuid,nodev (as the kernel path)');
    const n = await sameOnBoth((root) => ['chroot', root, ...devNull], 'echo > /dev/null');
    assert.equal(n.k.stdout.toString('utf8'), 'written\n');
    const z = await sameOnBoth((root) => ['chroot', root, ...zero], 'read a device node of the image');
    assert.equal(z.k.stdout.toString('utf8').trim(), '00 00 00');
    const s = await sameOnBoth((root) => chrootAs(root, 1000, suid), 'setuid-root id run as uid 1000');
    assert.match(s.k.stdout.toString('utf8'), /^uid=1000\(user\) gid=1000\(user\) euid=0\(root\)/);
  });

  test('--nosuid --nodev: both refused, as on a kernel mount with nosuid,nodev', async (t) => {
    const stack = useCleanup(t);
    const dir = mkdirIn(work, 'nosuid');
    const mp = mkdirIn(dir, 'ours');
    await mountOurs(['--nosuid', '--nodev'], mp, stack);
    assert.match(mountOf(mp).options, /\bnosuid\b/);
    assert.match(mountOf(mp).options, /\bnodev\b/);
    const kn = await mountKernelStack(img, mkdirIn(dir, 'kernel'), { nosuid: true, nodev: true }, stack);
    const roots = { kernelRoot: kn.mountpoint, oursRoot: mp };
    const n = await sameOnBoth((root) => ['chroot', root, ...devNull], 'echo > /dev/null', roots);
    assert.notEqual(n.k.status, 0);
    assert.match(n.k.stderr.toString('utf8'), /Permission denied/);
    await sameOnBoth((root) => ['chroot', root, ...zero], 'read a device node of the image', roots);
    const s = await sameOnBoth((root) => chrootAs(root, 1000, suid), 'setuid-root id run as uid 1000', roots);
    assert.match(s.k.stdout.toString('utf8'), /^uid=1000\(user\) gid=1000\(user\) groups=1000\(user\)$/m);
  });
});

/** Add `line` to `file` unless present; the stack removes exactly what was added. */
function ensureLine(file: string, line: string, stack: CleanupStack): void {
  const existed = existsSync(file);
  const before = existed ? readFileSync(file, 'utf8') : '';
  if (before.split('\n').includes(line)) return;
  const sep = before === '' || before.endsWith('\n') ? '' : '\n';
  appendFileSync(file, `${sep}${line}\n`);
  stack.add(`remove ${line} from ${file}`, () => {
    const now = readFileSync(file, 'utf8').split('\n');
    const i = now.lastIndexOf(line);
    if (i >= 0) now.splice(i, 1);
    const text = now.join('\n');
    if (!existed && text === '') rmSync(file);
    else writeFileSync(file, text);
  });
}

test('a subordinate-id user namespace as LXC makes it (lxc-usernsexec): mount, uid 1000 reads, /etc/shadow denied, umount', async (t) => {
  const stack = useCleanup(t);
  // lxc-usernsexec has newuidmap/newgidmap write the map, and they check /etc/subuid and
  // /etc/subgid also for root. The map is explicit, as an LXC config's lxc.idmap: with -s (which
  // also maps the caller's own ids into the namespace) every mount inside fails with EPERM here.
  ensureLine('/etc/subuid', SUBID_LINE, stack);
  ensureLine('/etc/subgid', SUBID_LINE, stack);
  const dir = mkdirIn(work, 'lxc');
  const mp = mkdirIn(dir, 'mp');
  const meta = mkdirIn(dir, 'run');
  for (const d of [dir, mp, meta]) chownSync(d, SUBID_BASE, SUBID_BASE);
  const atomfs = `${process.execPath} ${ATOMFS_BIN}`;
  const as = (uid: number): string => `setpriv --reuid=${uid} --regid=${uid} --clear-groups`;
  const script = `
${atomfs} mount --metadir ${meta} ${img.ref} ${mp}; echo "mount $?"
awk '$5 == "${mp}" { print "fstype", $(NF-2) }' /proc/self/mountinfo
stat -c 'owner %u %g %a' ${mp}/home/user/private
${as(1000)} cat ${mp}/home/user/private; echo "read-1000 $?"
${as(65534)} cat ${mp}/home/user/private 2>/dev/null; echo "read-65534 $?"
${as(1000)} cat ${mp}/etc/shadow 2>/dev/null; echo "shadow-1000 $?"
${as(65534)} cat ${mp}/etc/shadow 2>/dev/null; echo "shadow-65534 $?"
cat ${mp}/etc/shadow >/dev/null; echo "shadow-0 $?"
touch ${mp}/new 2>/dev/null; echo "touch $?"
${atomfs} umount --metadir ${meta} ${mp}; echo "umount $?"
awk '$5 == "${mp}"' /proc/self/mountinfo | wc -l | sed 's/^/left /'
`;
  const r = await run(['lxc-usernsexec', '-m', `b:0:${SUBID_BASE}:65536`, '--', '/bin/sh', '-c', script], { allowFail: true, timeoutMs: 120_000 });
  const text = r.stdout.toString('utf8');
  const secret = readFileSync(join(kernel.mountpoint, 'home/user/private'), 'utf8');
  assert.equal(
    text,
    ['mount 0', 'fstype fuse.atomfs', 'owner 1000 1000 600', `${secret}read-1000 0`, 'read-65534 1', 'shadow-1000 1', 'shadow-65534 1', 'shadow-0 0', 'touch 1', 'umount 0', 'left 0', ''].join('\n'),
    out(r),
  );
  assert.deepEqual(leftoversUnder(dir), []);
});

/**
 * A created non-root user, as a user would do it: `su -l` (a login environment: no
 * ATOMFS_TEST_RUN_DIR, no XDG_RUNTIME_DIR here) and `unshare -Umr`, no --metadir anywhere.
 */
describe('a non-root user with no --metadir', () => {
  let user: TestUser;
  before(() => {
    user = ensureTestUser(USER, processCleanup);
    // bin/atomfs and node are run in place (nothing copied): every dir above them must let the user in.
    for (const f of [ATOMFS_BIN, process.execPath]) {
      const r = runSync(['runuser', '-u', USER, '--', 'test', '-r', f], { allowFail: true });
      assert.equal(r.status, 0, `${f} is not readable by a non-root user (a dir above it is not world-searchable)`);
    }
  });

  function userRuntimeDir(): string {
    return `/tmp/atomfs-run-${user.uid}`;
  }

  /** Remove the per-user runtime dir atomfs makes (README: /tmp/atomfs-run-<uid>) if this test made it. */
  function cleanUserRuntime(stack: CleanupStack): void {
    const d = userRuntimeDir();
    if (existsSync(d)) return;
    stack.add(`remove ${d}`, () => {
      if (existsSync(d) && lstatSync(d).uid === user.uid) rmSync(d, { recursive: true, force: true });
    });
  }

  /** The user's processes still running (an atomfs server outliving its namespace would be one), after up to 3 s. */
  function userProcesses(): string[] {
    const end = Date.now() + 3000;
    for (;;) {
      const found: string[] = [];
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        try {
          if (statSync(`/proc/${p}`).uid === user.uid) found.push(`${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
        } catch {
          // exited meanwhile
        }
      }
      if (found.length === 0 || Date.now() >= end) return found;
      runSync(['sleep', '0.1']);
    }
  }

  function userScript(dir: string, name: string, body: string): string {
    const f = join(dir, name);
    writeFileSync(f, `set -u\n${body}`, { mode: 0o644 });
    return f;
  }

  test("su -l USER -c 'unshare -Umr sh -c \"atomfs mount; ls; atomfs verify; atomfs umount\"'", async (t) => {
    const stack = useCleanup(t);
    cleanUserRuntime(stack);
    const dir = mkdirIn(work, 'su');
    const mp = mkdirIn(dir, 'mp');
    chownSync(mp, user.uid, user.gid);
    const atomfs = `${process.execPath} ${ATOMFS_BIN}`;
    const script = userScript(dir, 'run.sh', `
${atomfs} mount ${img.ref} ${mp}; echo "mount $?"
ls ${mp}; echo "ls $?"
${atomfs} verify ${mp} >/dev/null; echo "verify $?"
${atomfs} umount ${mp}; echo "umount $?"
ls ${mp} | wc -l | sed 's/^/after /'
`);
    const r = await run(['su', '-l', USER, '-c', `unshare -Umr sh ${script}`], { allowFail: true, timeoutMs: 180_000 });
    const rootList = readdirSync(kernel.mountpoint).sort().join('\n');
    const text = r.stdout.toString('utf8');
    assert.equal(text, `mount 0\n${rootList}\nls 0\nverify 0\numount 0\nafter 0\n`, out(r));
    assert.deepEqual(leftoversUnder(dir), []);
    assert.deepEqual(userProcesses(), [], 'no server left');
    // README: the fallback runtime dir is /tmp/atomfs-run-<uid>, private to the user.
    const rd = lstatSync(userRuntimeDir());
    assert.deepEqual([rd.isDirectory(), rd.uid, rd.mode & 0o777], [true, user.uid, 0o700]);
  });

  test('a /tmp/atomfs-run-<uid> made by someone else is refused, nothing is mounted', async (t) => {
    const stack = useCleanup(t);
    const planted = userRuntimeDir();
    assert.equal(existsSync(planted), false, `${planted} exists already`);
    // Owned by root, writable only by root: only the owner check can refuse it.
    mkdirSync(planted, { mode: 0o755 });
    stack.add(`remove ${planted}`, () => rmSync(planted, { recursive: true, force: true }));
    const dir = mkdirIn(work, 'planted');
    const mp = mkdirIn(dir, 'mp');
    chownSync(mp, user.uid, user.gid);
    const script = userScript(dir, 'run.sh', `${process.execPath} ${ATOMFS_BIN} mount ${img.ref} ${mp}; echo "mount $?"; ls ${mp} | wc -l\n`);
    const r = await run(['su', '-l', USER, '-c', `unshare -Umr sh ${script}`], { allowFail: true, timeoutMs: 180_000 });
    assert.equal(r.stdout.toString('utf8'), 'mount 1\n0\n', out(r));
    const errors = r.stderr.toString('utf8').split('\n').filter((l) => l.startsWith('Error: '));
    assert.equal(errors.length, 1, out(r));
    assert.ok(errors[0]!.includes(planted), `the error names ${planted}: ${errors[0]}`);
    assert.deepEqual(readdirSync(planted), [], 'nothing was written into it');
    assert.deepEqual(leftoversUnder(dir), []);
  });

  test('--upper in a user namespace: the change lands in the upper dir, owned by the user', async (t) => {
    const stack = useCleanup(t);
    cleanUserRuntime(stack);
    const dir = mkdirIn(work, 'upper-userns');
    chownSync(dir, user.uid, user.gid);
    const atomfs = `${process.execPath} ${ATOMFS_BIN}`;
    const script = userScript(work, 'upper-userns.sh', `
cd ${dir} && mkdir upper dest
${atomfs} mount --upper=./upper ${img.ref} dest; echo "mount $?"
touch dest/ab; echo "touch $?"
cat dest/etc/hostname
${atomfs} umount dest; echo "umount $?"
ls upper
`);
    const r = await run(['su', '-l', USER, '-c', `unshare -Umr sh ${script}`], { allowFail: true, timeoutMs: 180_000 });
    assert.equal(r.stdout.toString('utf8'), 'mount 0\ntouch 0\natomfs-debian-l3\numount 0\nab\n', out(r));
    assert.equal(statSync(join(dir, 'upper/ab')).uid, user.uid);
    assert.deepEqual(leftoversUnder(dir), []);
    assert.deepEqual(userProcesses(), [], 'no server left');
  });
});

describe('--upper DIR as host root', () => {
  /** Changes made through a writable mount: a new file, a whiteout, a copy-up, a new dir. */
  const changes = 'touch ab && rm etc/issue && echo extra >> etc/passwd && mkdir -p newdir/sub && rm -rf etc/debian_version';

  /** type, mode, owner, (device numbers), path of everything in an upper dir. */
  async function listing(dir: string): Promise<string[]> {
    const r = await run(['find', '.', '-printf', '%y %m %U:%G %p\\n'], { cwd: dir });
    const lines = sortedLines(r.stdout).map((l) => (l.startsWith('c ') ? `${l} ${statSync(join(dir, l.split(' ').slice(3).join(' '))).rdev}` : l));
    return lines;
  }

  test('atomfs mount --upper=./upper; touch dest/ab; atomfs umount dest: upper/ holds ab and the same changes a kernel overlay makes', async (t) => {
    const stack = useCleanup(t);
    const dir = mkdirIn(work, 'upper-root');
    mkdirIn(dir, 'upper');
    const dest = mkdirIn(dir, 'dest');
    const r = await run([process.execPath, ATOMFS_BIN, 'mount', ...FUSE_BACKEND, '--upper=./upper', img.ref, 'dest'], { cwd: dir, env: atomfsEnv(), allowFail: true });
    stack.add(`atomfs umount ${dest}`, () => {
      if (readMountinfo().some((m) => m.mountpoint === dest)) runSync([process.execPath, ATOMFS_BIN, 'umount', dest], { env: atomfsEnv(), allowFail: true });
    });
    assert.equal(r.status, 0, out(r));
    await run(['sh', '-ec', changes], { cwd: dest });
    const u = await run([process.execPath, ATOMFS_BIN, 'umount', 'dest'], { cwd: dir, env: atomfsEnv(), allowFail: true });
    assert.equal(u.status, 0, out(u));
    assert.deepEqual(readdirSync(dest), [], 'unmounted');
    const ourUpper = await listing(join(dir, 'upper'));
    assert.ok(ourUpper.includes('f 644 0:0 ./ab'), ourUpper.join('\n'));
    assert.ok(ourUpper.includes('c 0 0:0 ./etc/issue 0'), `a whiteout for the removed file:\n${ourUpper.join('\n')}`);

    // The control: the kernel's writable overlay with the kernel stack as its lower layer.
    const kdir = mkdirIn(dir, 'kernel');
    const kupper = mkdirIn(kdir, 'upper');
    const kwork = mkdirIn(kdir, 'work');
    const kmp = mkdirIn(kdir, 'mp');
    stack.add(`umount ${kmp}`, () => {
      if (readMountinfo().some((m) => m.mountpoint === kmp)) runSync(['umount', kmp]);
    });
    await run(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${kernel.mountpoint},upperdir=${kupper},workdir=${kwork}`, kmp]);
    await run(['sh', '-ec', changes], { cwd: kmp });
    runSync(['umount', kmp]);
    assert.deepEqual(ourUpper, await listing(kupper));
  });
});

describe('container runtimes with our mount as the rootfs (as host root)', () => {
  // ls -d: no "total" line (directory st_blocks are compared by the `ls -l /` test above).
  const script = 'id; cat /etc/hostname /home/user/private; ls -lnd /home/user /srv/modes/d-*; /usr/local/bin/suid-id; echo > /dev/null && echo devnull-ok';

  /** Run `argv(root)` on the kernel stack (must succeed) and on ours: same status and stdout. */
  async function sameContainerRun(argv: (root: string) => string[], log?: (name: 'k' | 'o') => string): Promise<string> {
    const k = await run(argv(kernel.mountpoint), { allowFail: true, timeoutMs: 120_000 });
    assert.equal(k.status, 0, `the control failed: ${out(k)}${log ? `\n--- log\n${readLog(log('k'))}` : ''}`);
    const o = await run(argv(ours), { allowFail: true, timeoutMs: 120_000 });
    assert.equal(o.status, 0, `${out(o)}${log ? `\n--- log\n${readLog(log('o'))}` : ''}`);
    assert.equal(o.stdout.toString('utf8'), k.stdout.toString('utf8'), 'ours (actual) vs kernel stack (expected)');
    return k.stdout.toString('utf8');
  }
  function readLog(f: string): string {
    return existsSync(f) ? readFileSync(f, 'utf8') : '(no log)';
  }

  /**
   * systemd-nspawn (systemd-container). This machine's PID 1 is not systemd and there is no
   * system bus: nspawn can neither register the machine (--register=no) nor make its own scope
   * unit ("Failed to open system bus"), so --keep-unit runs it in the caller's cgroup.
   */
  const nspawn = (root: string, extra: readonly string[]): string[] => ['systemd-nspawn', '-D', root, '--register=no', '--keep-unit', '-q', '--read-only', '--pipe', '-M', 'atomfs-test-crfs', ...extra, '/bin/sh', '-c', script];
  for (const user of ['root', 'user']) {
    test(`systemd-nspawn -D MP -u ${user}: same output as with the kernel stack`, async () => {
      const text = await sameContainerRun((root) => nspawn(root, ['-u', user]));
      assert.match(text, /devnull-ok/);
      assert.match(text, user === 'root' ? /^uid=0\(root\)/ : /^uid=1000\(user\) gid=1000\(user\) euid=0\(root\)/m);
    });
  }

  test('systemd-nspawn --private-users=1000000:65536 --private-users-ownership=off: same output as with the kernel stack', async () => {
    // Image owners are not mapped into this user namespace: they show as nobody, and the
    // container's root is "other" to them (cannot read /home/user/private) — as on the kernel.
    const text = await sameContainerRun((root) => nspawn(root, ['--private-users=1000000:65536', '--private-users-ownership=off']));
    assert.match(text, /^uid=0\(root\)/);
    assert.doesNotMatch(text, /secret/);
  });

  test('systemd-nspawn --private-users-ownership=map (ID-mapped rootfs)', {
    skip:
      'cannot work here, not even on the kernel stack: nspawn says "ID mapped mounts are apparently not available" ' +
      'for the kernel overlayfs (overlayfs does not support ID-mapped mounts of itself) and for our FUSE mount ' +
      '(FUSE allows them only when the server opts in with FUSE_ALLOW_IDMAP in its INIT reply, Linux >= 6.12; ours does not)',
  }, () => {});

  /**
   * lxc-execute (lxc): `lxc.net.0.type = none` keeps the host's network (no bridge here),
   * `lxc.apparmor.profile = unconfined` because this kernel has no AppArmor. The unprivileged
   * variant (lxc.idmap) needs its own network namespace (`empty`): sysfs cannot be mounted in a
   * user namespace that does not own the network namespace.
   */
  async function lxcCompare(t: { after(fn: () => void): void }, label: string, config: readonly string[], extra: readonly string[]): Promise<string> {
    const stack = useCleanup(t);
    const dir = mkdirIn(work, `lxc-exec-${label}`);
    const nameOf = (root: string): string => (root === kernel.mountpoint ? 'atomfs-test-k' : 'atomfs-test-o');
    const lxcArgv = (root: string): string[] => {
      const name = nameOf(root);
      const conf = join(dir, `${name}.conf`);
      writeFileSync(conf, [`lxc.rootfs.path = dir:${root}`, 'lxc.uts.name = atomfs-test', 'lxc.mount.auto = proc:mixed sys:ro', 'lxc.apparmor.profile = unconfined', ...config, ''].join('\n'));
      const lxcpath = join(dir, `${name}-path`);
      mkdirSync(lxcpath, { recursive: true, mode: 0o755 });
      stack.add(`lxc-stop ${name}`, () => {
        runSync(['lxc-stop', '-k', '-n', name, '-P', lxcpath], { allowFail: true });
      });
      return ['lxc-execute', '-n', name, '-f', conf, '-P', lxcpath, '-o', join(dir, `${name}.log`), '-l', 'ERROR', ...extra, '--', '/bin/sh', '-c', script];
    };
    return sameContainerRun(lxcArgv, (which) => join(dir, `atomfs-test-${which}.log`));
  }

  test('lxc-execute (rootfs dir:MP) as root: same output as with the kernel stack', async (t) => {
    const text = await lxcCompare(t, 'root', ['lxc.net.0.type = none'], []);
    assert.match(text, /^uid=0\(root\)[^]*devnull-ok/);
  });

  test('lxc-execute (rootfs dir:MP) as uid 1000: same output as with the kernel stack', async (t) => {
    const text = await lxcCompare(t, 'u1000', ['lxc.net.0.type = none'], ['-u', '1000', '-g', '1000']);
    assert.match(text, /^uid=1000\(user\)[^]*secret[^]*euid=0\(root\)[^]*devnull-ok/);
  });

  test('unprivileged lxc-execute (lxc.idmap u/g 0 1000000 65536): same output as with the kernel stack', async (t) => {
    const stack = useCleanup(t);
    ensureLine('/etc/subuid', SUBID_LINE, stack);
    ensureLine('/etc/subgid', SUBID_LINE, stack);
    const text = await lxcCompare(t, 'idmap', ['lxc.net.0.type = empty', `lxc.idmap = u 0 ${SUBID_BASE} 65536`, `lxc.idmap = g 0 ${SUBID_BASE} 65536`], []);
    assert.match(text, /^uid=0\(root\)[^]*devnull-ok/);
    assert.doesNotMatch(text, /secret/, 'host uid 1000 is not mapped: its 0600 file stays closed');
  });
});
