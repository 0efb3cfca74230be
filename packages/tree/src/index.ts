export { deviceNumbers, KIND_MODE, S_IFMT, type NodeAttr, type NodeKind } from './attr.js';
export { extract, isDestinationError, type ExtractOptions, type ExtractResult, type ExtractSkip } from './extract.js';
export { isZero, readContent, writeAll, type FileContent } from './file-content.js';
export { FsError, type FsErrorCode } from './fs-error.js';
export type { ImageTree, TreeEntry, TreeNode, Xattr } from './image-tree.js';
export { components, pathBytes, resolvePath, type PathLike } from './path.js';
export { PathApi } from './path-api.js';
export { Dirent, Stats } from './stats.js';
export { walkNodes, walkTree, type WalkEntry } from './walk.js';
