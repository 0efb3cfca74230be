/**
 * A three-layer set exercising every rule: replaced files, both whiteout kinds (and xwhiteouts),
 * opaque directories by each marker, directory ↔ non-directory replacement, symlinks, hard
 * links, devices, xattrs, modes and owners changed above, deep paths, a non-UTF-8 name.
 * Layers are listed top first, as the overlay takes them.
 */
import type { Op } from './layer-builder.js';

const big = Buffer.alloc(300_000);
for (let i = 0; i < big.length; i++) big[i] = (i * 7919 + (i >> 9)) & 0xff;

export const BOTTOM: Op[] = [
  { file: 'a.txt', data: 'a1\n' },
  { file: 'keep.txt', data: 'kept\n', mode: 0o640, owner: { uid: 1000, gid: 1001 }, xattrs: { 'user.k': 'v', 'user.empty': '' } },
  { file: 'big.bin', data: big },
  { file: 'd/x', data: 'x1' },
  { file: 'd/y', data: 'y1' },
  { file: 'd/gone', data: 'g1' },
  { file: 'd/sub/deep/deeper/f', data: 'deep1' },
  { file: 'd/sub/deep/deeper/other', data: 'other1' },
  { file: 'opq_t/old1' },
  { file: 'opq_t/old2' },
  { file: 'opq_u/old' },
  { file: 'opq_wh/old' },
  { file: 'opq_sib/old' },
  { file: 'replaced_dir/inner' },
  { file: 'file_to_dir', data: 'was a file' },
  { file: 'merge3/m1' },
  { file: 'merge3/shared', data: 'bottom' },
  { symlink: 'link1', target: 'a.txt' },
  { symlink: 'dangling', target: 'no/such/thing' },
  { file: 'hl1', data: 'hard link content' },
  { link: 'd/hl2', to: 'hl1' },
  { link: 'd/sub/hl3', to: 'hl1' },
  { file: 'hl_top', data: 'linked' },
  { link: 'hl_top2', to: 'hl_top' },
  { fifo: 'pipe', mode: 0o600 },
  { dev: 'null', type: 'c', major: 1, minor: 3, mode: 0o666 },
  { dev: 'loopish', type: 'b', major: 7, minor: 300 },
  { dir: 'mode_change', mode: 0o755 },
  { file: 'mode_change/f', mode: 0o644 },
  { file: 'xw/xa' },
  { file: 'xw/xb' },
  { file: 'big_tree/a/b/c/d/e/f' },
  { file: 'big_tree/z' },
  { file: 'rec/a' },
  { file: 'f\xffn', data: 'latin1 name' },
  { dir: 'empty' },
  { file: 'wh_merge/low' },
  { file: 'gone_below/deep/x' },
];

export const MIDDLE: Op[] = [
  { file: 'a.txt', data: 'a2 longer\n', mode: 0o600 },
  { whiteout: 'd/x', style: 'chr' },
  { file: 'd/y', data: 'y2' },
  { file: 'd/new', data: 'n2' },
  { file: 'd/sub/deep/deeper/f2', data: 'deep2' },
  { dir: 'opq_t', opaque: 'trusted' },
  { file: 'opq_t/new1' },
  { dir: 'opq_u', opaque: 'user' },
  { file: 'opq_u/new' },
  { dir: 'opq_wh', opaque: 'wh' },
  { file: 'opq_wh/new' },
  { dir: 'opq_sib', opaque: 'wh-sibling' },
  { file: 'opq_sib/new' },
  { file: 'replaced_dir', data: 'now a file' },
  { file: 'file_to_dir/child', data: 'now a dir' },
  { file: 'merge3/m2' },
  { file: 'merge3/shared', data: 'middle', mode: 0o600 },
  { symlink: 'link1', target: 'keep.txt' },
  { file: 'hl1', data: 'new content, no longer linked' },
  { dir: 'mode_change', mode: 0o700, owner: { uid: 1234, gid: 5678 }, xattrs: { 'user.dir': 'middle' } },
  { file: 'mode_change/f', mode: 0o4755, owner: { uid: 7, gid: 8 } },
  { whiteout: 'xw/xa', style: 'x' },
  { file: 'xw/xc' },
  { whiteout: 'rec', style: 'wh' },
  { whiteout: 'never_existed', style: 'wh' },
  { file: 'wh_merge/mid' },
  { whiteout: 'gone_below', style: 'wh' },
  { whiteout: 'pipe', style: 'wh' },
];

export const TOP: Op[] = [
  { whiteout: 'd/gone', style: 'wh' },
  { file: 'd/x/inner', data: 'x is a directory now' },
  { file: 'merge3/m3' },
  { whiteout: 'merge3/m1', style: 'chr' },
  { file: 'opq_t/new3' },
  { whiteout: 'opq_t/new1', style: 'chr' },
  { file: 'd/sub/deep/deeper/f', data: 'deep3', mode: 0o755, owner: { uid: 0, gid: 42 } },
  { whiteout: 'big_tree', style: 'wh' },
  { file: 'rec/b' },
  { symlink: 'keep.txt2', target: '../elsewhere' },
  { whiteout: 'null', style: 'chr' },
  { file: 'new_top/n', xattrs: { 'user.top': 'yes' } },
  { dir: 'd', mode: 0o711, xattrs: { 'user.merged': 'top' } },
  { whiteout: 'wh_merge/low', style: 'wh' },
  { file: 'hl_top', data: 'top copy' },
];

export const LAYERS: Op[][] = [TOP, MIDDLE, BOTTOM];
