import type { Layer as OciLayer } from '@atomfs/oci';
import type { LayerSpec } from '../layers/layer-spec.js';
import type { Backend } from '../metadir.js';
import type { Journal } from './journal.js';

/** What a mount backend needs of the mount being made. */
export interface BackendMount {
  target: string;
  /** Top layer first. */
  layers: readonly OciLayer[];
  specs: readonly LayerSpec[];
  upper: UpperDirs | undefined;
  nosuid: boolean;
  nodev: boolean;
  metadirFlag: string | undefined;
  signal: AbortSignal | undefined;
}

/** The writable overlay's dirs, when the mount is writable. */
export interface UpperDirs {
  upper: string;
  work: string;
}

/**
 * One way of making the read-only merged view (and the writable overlay on it): the kernel's
 * loop/dm-verity + squashfs/erofs + overlayfs, or our FUSE server. Every step goes through the
 * journal, which records it before it can take effect; undoing is the same for all backends
 * (undo.ts), from the record alone.
 */
export interface MountBackend {
  readonly name: Backend;
  mount(m: BackendMount, journal: Journal): Promise<void>;
}
