/** The superblock stores the UUID as 16 raw bytes; veritysetup prints and accepts the text form. */

const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** "b5fd1e6f-36ac-4717-bbe5-e20e145075f5" → 16 bytes; null when not a UUID. */
export function parseUuid(text: string): Buffer | null {
  if (!uuidText.test(text)) return null;
  return Buffer.from(text.replace(/-/g, ''), 'hex');
}

/** 16 bytes → lower-case text form (libuuid's uuid_unparse). */
export function formatUuid(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Hex text → bytes; null unless it is an even number of hex digits. */
export function parseHex(text: string): Buffer | null {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) return null;
  return Buffer.from(text, 'hex');
}
