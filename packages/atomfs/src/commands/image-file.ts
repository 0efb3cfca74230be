/**
 * What `atomfs sqfs` and `atomfs erofs` do alike on one image file, over the format-neutral tree:
 * ls (text, long, NDJSON), cat and extract with its report. The commands keep what differs per
 * format: opening the image, info, mount.
 */
import { pipeline } from 'node:stream/promises';
import { deviceNumbers, isDestinationError, PathApi, resolvePath, walkTree, type ExtractOptions, type ExtractResult, type ExtractSkip, type ImageTree, type NodeKind, type PathLike, type TreeNode, type WalkEntry } from '@atomfs/tree';
import { argBytes } from '../args.js';
import { CommandError } from '../errors.js';
import { attrRecord, notUtf8, type ListingRecord } from '../listing.js';

/** One image as the commands use it; `explain` turns the reader's error into the one the user sees. */
export interface ImageFile<N extends TreeNode> {
  tree: ImageTree<N>;
  explain?: (err: unknown) => unknown;
}

/** Run `fn`, turning a failure (a path that does not resolve, a damaged image) into a one-line error naming `what`. */
export function guard<T>(img: ImageFile<TreeNode>, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asCommandError(img, what, err);
  }
}

/** `--subdir P` of a single-image mount: P must resolve (symlinks followed) to a directory of the image. */
export function checkSubdir<N extends TreeNode>(img: ImageFile<N>, text: string, path: PathLike = text): void {
  const dir = guard(img, `--subdir ${text}`, () => resolvePath(img.tree, path, true));
  if (dir.kind !== 'dir') throw new CommandError(`--subdir ${text}: not a directory in the image`);
}

async function guardAsync<T>(img: ImageFile<TreeNode>, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asCommandError(img, what, err);
  }
}

function asCommandError(img: ImageFile<TreeNode>, what: string, err: unknown): CommandError {
  if (err instanceof CommandError) return err;
  return new CommandError(`${what}: ${((img.explain?.(err) ?? err) as Error).message}`);
}

const TYPE_CHARS: Record<NodeKind, string> = { dir: 'd', file: '-', symlink: 'l', block: 'b', char: 'c', fifo: 'p', socket: 's' };

function modeString(kind: NodeKind, m: number): string {
  const rwx = (v: number, special: boolean, ch: string) =>
    (v & 4 ? 'r' : '-') + (v & 2 ? 'w' : '-') + (special ? (v & 1 ? ch : ch.toUpperCase()) : v & 1 ? 'x' : '-');
  return TYPE_CHARS[kind] + rwx((m >> 6) & 7, (m & 0o4000) !== 0, 's') + rwx((m >> 3) & 7, (m & 0o2000) !== 0, 's') + rwx(m & 7, (m & 0o1000) !== 0, 't');
}

function entryJson<N extends TreeNode>(tree: ImageTree<N>, e: WalkEntry<N>): ListingRecord {
  return attrRecord(e.pathBuffer, e.attr, e.node.kind === 'symlink' ? tree.readlink(e.node) : undefined);
}

const NL = Buffer.from('\n');
const ARROW = Buffer.from(' -> ');

/** The line for one entry, as a string when its names are UTF-8, else as raw bytes. */
function entryLine<N extends TreeNode>(tree: ImageTree<N>, e: WalkEntry<N>, long: boolean): string | Buffer {
  const link = long && e.node.kind === 'symlink' ? tree.readlink(e.node) : undefined;
  const head = long ? longHead(e) : '';
  const raw = notUtf8(e.path, e.pathBuffer) || (link !== undefined && notUtf8(link.toString('utf8'), link));
  if (!raw) return head + e.path + (link !== undefined ? ` -> ${link.toString('utf8')}` : '') + '\n';
  return Buffer.concat([Buffer.from(head), e.pathBuffer, ...(link !== undefined ? [ARROW, link] : []), NL]);
}

/** "drwxr-xr-x     0/0            4096 2024-01-01 00:00 " */
function longHead(e: WalkEntry<TreeNode>): string {
  const a = e.attr;
  const dev = e.node.kind === 'block' || e.node.kind === 'char' ? deviceNumbers(a.rdev) : undefined;
  const size = dev !== undefined ? `${dev.major},${dev.minor}` : String(a.size);
  const t = new Date(a.mtime * 1000).toISOString().replace('T', ' ').slice(0, 16);
  return `${modeString(e.node.kind, a.mode)} ${String(a.uid).padStart(5)}/${String(a.gid).padEnd(5)} ${size.padStart(12)} ${t} `;
}

async function write(out: NodeJS.WritableStream, data: string | Buffer): Promise<void> {
  if (!out.write(data)) await new Promise((r) => out.once('drain', r));
}

/** `ls [-l] [--json] IMAGE [PATH]`: PATH and everything below it, a line (or NDJSON object) each. */
export async function listImage<N extends TreeNode>(img: ImageFile<N>, image: string, startArg: string, style: { json: boolean; long: boolean }): Promise<void> {
  const start = argBytes(startArg);
  guard(img, startArg, () => resolvePath(img.tree, start, false));
  // Lines are gathered into 64 KiB writes (one write per entry cost more than the walk);
  // a raw-byte line (a name that is not UTF-8) flushes the text before it, in order.
  let chunk = '';
  await guardAsync(img, image, async () => {
    for (const e of walkTree(img.tree, start)) {
      const line = style.json ? JSON.stringify(entryJson(img.tree, e)) + '\n' : entryLine(img.tree, e, style.long);
      if (typeof line === 'string') chunk += line;
      else {
        if (chunk !== '') await write(process.stdout, chunk);
        chunk = '';
        await write(process.stdout, line);
      }
      if (chunk.length >= 65536) {
        await write(process.stdout, chunk);
        chunk = '';
      }
    }
  });
  if (chunk !== '') await write(process.stdout, chunk);
}

/** `cat IMAGE PATH`: a regular file's bytes to stdout, waiting for a slow reader. */
export async function catImageFile<N extends TreeNode>(img: ImageFile<N>, pathText: string): Promise<void> {
  const path = argBytes(pathText);
  const node = guard(img, pathText, () => resolvePath(img.tree, path, true));
  if (node.kind !== 'file') throw new CommandError(`${pathText}: not a regular file (${node.kind})`);
  await guardAsync(img, pathText, () => pipeline(new PathApi(img.tree).createReadStream(path), process.stdout, { end: false }));
}

/**
 * Exit status of an extraction that skipped entries. unsquashfs says 2, which atomfs gives usage
 * errors: a script must be able to tell "wrong flags" from "mostly extracted".
 */
const PARTIAL_EXTRACTION = 3;

/**
 * `extract [--subdir P] IMAGE DIR`, reported as unsquashfs does: each skipped entry as it is
 * skipped, a progress line on a terminal, the counts, and exit status 3 when entries were skipped.
 */
export async function extractImage<N extends TreeNode>(
  img: ImageFile<N>,
  image: string,
  run: (options: Omit<ExtractOptions<N>, 'content'>) => Promise<ExtractResult>,
  subdir: string | undefined,
): Promise<number> {
  if (subdir !== undefined) guard(img, `--subdir ${subdir}`, () => resolvePath(img.tree, argBytes(subdir), false));
  const r = await extractReporting(img, image, () =>
    run({
      ...(subdir !== undefined ? { subdir: argBytes(subdir) } : {}),
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
      onSkip: (s) => process.stderr.write(Buffer.concat([Buffer.from('warning: skipped '), describeSkip(s), NL])),
      // On a terminal, a progress line as unsquashfs shows one (entries against the image's inodes).
      ...(process.stderr.isTTY ? { onProgress: (n: number, total: number) => process.stderr.write(`\r${progressLine(n, total)}\x1b[K`) } : {}),
    }),
  );
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  process.stderr.write(`extracted ${r.files} files, ${r.dirs} directories, ${r.symlinks} symlinks, ${r.hardlinks} hard links, ${r.specials} special files (${r.bytes} bytes)\n`);
  if (r.skipped.length === 0) return 0;
  const parts = r.skipped.map((s) => describeSkip(s)).flatMap((d, i) => (i === 0 ? [d] : [Buffer.from('; '), d]));
  process.stderr.write(Buffer.concat([Buffer.from(`Error: ${r.skipped.length} ${r.skipped.length === 1 ? 'entry' : 'entries'} not extracted: `), ...parts, NL]));
  return PARTIAL_EXTRACTION;
}

/** The extraction's result; a failure of the image (not of the destination) names the image. */
async function extractReporting(img: ImageFile<TreeNode>, image: string, fn: () => Promise<ExtractResult>): Promise<ExtractResult> {
  try {
    return await fn();
  } catch (err) {
    throw isDestinationError(err) ? err : asCommandError(img, image, err);
  }
}

/** "/a/l (symlink): ENAMETOOLONG" with the image path's own bytes; a lost directory's contents went with it. */
function describeSkip(s: ExtractSkip): Buffer {
  const what = s.kind === 'dir' ? 'directory and its contents' : s.kind;
  return Buffer.concat([s.path, Buffer.from(` (${what}): ${s.error.code ?? s.error.message}`)]);
}

/** "[=====     ] 1234/5678  21%" (hard links make the walk longer than the inode count: capped). */
function progressLine(done: number, total: number): string {
  const frac = Math.min(1, done / Math.max(1, total));
  const width = 40;
  const bar = '='.repeat(Math.round(frac * width)).padEnd(width);
  return `[${bar}] ${Math.min(done, total)}/${total} ${Math.round(frac * 100).toString().padStart(3)}%`;
}
