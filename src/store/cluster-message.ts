/**
 * Decoding of cluster messages received from a network event channel (Redis pub/sub, PostgreSQL
 * NOTIFY): anything that is not a small JSON object with a string `type` is dropped.
 */
import type { ClusterMessage } from './types.js';

/** Messages larger than this are refused on both ends (they are small commands). */
export const MAX_CLUSTER_MESSAGE_BYTES = 7999;

/** A received payload as a message, or undefined when it is not one (too large, not JSON, no type). */
export function parseClusterMessage(text: string): ClusterMessage | undefined {
  if (text.length > MAX_CLUSTER_MESSAGE_BYTES) return undefined;
  let v: unknown;
  try { v = JSON.parse(text); } catch { return undefined; }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { type?: unknown }).type !== 'string') return undefined;
  return v as ClusterMessage;
}

/** The message as JSON text; throws RangeError when it is over the size limit. */
export function encodeClusterMessage(msg: ClusterMessage): string {
  const text = JSON.stringify(msg);
  const n = Buffer.byteLength(text);
  if (n > MAX_CLUSTER_MESSAGE_BYTES) throw new RangeError(`cluster message of ${n} bytes is over ${MAX_CLUSTER_MESSAGE_BYTES}`);
  return text;
}
