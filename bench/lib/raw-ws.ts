/**
 * A lean WebSocket client for the throughput and round-trip runs. With the `ws` client the bench's
 * own receiving side cost more CPU per MiB than any relay (frame reassembly copies, a 64 KiB
 * allocation per read), so on two cores every relay ran into the client's ceiling. This one reads
 * through one reused 1 MiB buffer (net `onread`), parses frame headers itself (RFC 6455 §5.2; server
 * frames are unmasked) and hands payload bytes on in place, copying nothing but the few bytes of a
 * split header, the RFB handshake and close frames. It sends masked binary frames and a close frame.
 * Used the same way for every relay; the direct-TCP baseline reads the same way (clients.ts).
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { ClientHandshake } from '../../src/rfb/client-handshake.js';
import { StreamCheck, type StreamResult } from './clients.js';

const READ = Buffer.allocUnsafe(1024 * 1024);

function frame(opcode: number, payload: Uint8Array): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) { out[1] = 0x80 | 126; out.writeUInt16BE(len, 2); }
  else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(len), 2); }
  const mask = randomBytes(4);
  mask.copy(out, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

export interface RawWs {
  /** Resolves when the upgrade (and with `rfb`, the RFB handshake up to ServerInit) is done. */
  ready: Promise<void>;
  /** Binary payload bytes after that, in place: valid only during the call. */
  onData(cb: (b: Buffer) => void): void;
  send(b: Uint8Array): void;
  /** Resolves on TCP close with the close code the server sent (null if none) and any error. */
  closed: Promise<{ code: number | null; error?: string }>;
  close(): void;
  destroy(): void;
}

export function openRawWs(url: string, rfb: boolean, timeoutMs: number): RawWs {
  const u = new URL(url);
  const hs = rfb ? new ClientHandshake({ credential: { type: 'none' }, shared: true }) : undefined;
  let rfbDone = !hs;
  let closeCode: number | null = null;
  let error: string | undefined;
  let sink: ((b: Buffer) => void) | undefined;
  let held: Buffer[] = [];
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => { resolveReady = resolve; rejectReady = reject; });
  ready.catch(() => undefined);

  let http: Buffer | null = Buffer.alloc(0); // until the 101 is complete
  const header = Buffer.alloc(14);
  let headerHave = 0;
  let opcode = 0;
  let remaining = 0;
  let inPayload = false;
  let control: Buffer[] = [];

  const socket = connect({
    host: u.hostname, port: Number(u.port),
    onread: { buffer: READ, callback: (nread: number) => { onBytes(READ.subarray(0, nread)); return true; } },
  });
  socket.setNoDelay(true);
  const timer = setTimeout(() => { error ??= `timed out after ${timeoutMs} ms`; socket.destroy(); }, timeoutMs);
  const send = (op: number, b: Uint8Array) => { if (!socket.destroyed) socket.write(frame(op, b)); };
  const closed = new Promise<{ code: number | null; error?: string }>((resolve) => {
    socket.on('close', () => {
      clearTimeout(timer);
      rejectReady(new Error(error ?? `closed ${closeCode ?? 'without a close frame'} before ready`));
      resolve({ code: closeCode, ...(error ? { error } : {}) });
    });
  });
  socket.on('connect', () => {
    socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n`);
  });
  socket.on('error', (e) => { error ??= e.message; });

  function deliver(b: Buffer): void {
    if (sink) sink(b);
    else held.push(Buffer.from(b)); // READ is reused: keep a copy until someone listens
  }

  function payload(b: Buffer): void {
    if (opcode !== 2 && opcode !== 0) { control.push(Buffer.from(b)); return; }
    if (rfbDone) return deliver(b);
    try {
      const step = hs!.feed(Buffer.from(b)); // the handshake may keep what it is given: copy out of READ
      for (const out of step.send) send(2, out);
      if (step.done) {
        rfbDone = true;
        resolveReady();
        if (step.done.rest.length) deliver(Buffer.from(step.done.rest));
      }
    } catch (err) {
      error ??= (err as Error).message;
      socket.destroy();
    }
  }

  function endOfFrame(): void {
    if (opcode === 8) {
      const body = Buffer.concat(control);
      closeCode = body.length >= 2 ? body.readUInt16BE(0) : 1005;
      send(8, body.subarray(0, 2));
      socket.end();
    }
    control = [];
  }

  function onBytes(chunk: Buffer): void {
    let b = chunk;
    if (http) {
      const all: Buffer = Buffer.concat([http, b]);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) { http = all; return; }
      const status = all.subarray(0, 12).toString('latin1');
      if (!/^HTTP\/1\.1 101/.test(status)) { error = `upgrade refused: ${status}`; socket.destroy(); return; }
      http = null;
      if (!hs) resolveReady();
      b = all.subarray(end + 4);
    }
    let i = 0;
    while (i < b.length) {
      if (inPayload) {
        const take = Math.min(remaining, b.length - i);
        payload(b.subarray(i, i + take));
        i += take;
        remaining -= take;
        if (remaining === 0) { inPayload = false; endOfFrame(); }
        continue;
      }
      // Frame header: 2 bytes, then 0, 2 or 8 bytes of extended length (no mask from a server).
      header[headerHave++] = b[i++]!;
      if (headerHave < 2) continue;
      const len7 = header[1]! & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
      if (headerHave < need) continue;
      opcode = header[0]! & 0x0f;
      remaining = len7 === 126 ? header.readUInt16BE(2) : len7 === 127 ? Number(header.readBigUInt64BE(2)) : len7;
      headerHave = 0;
      inPayload = remaining > 0;
      if (!inPayload) endOfFrame();
    }
  }

  return {
    ready,
    onData(cb) { sink = cb; const h = held; held = []; for (const b of h) cb(b); },
    send: (b) => send(2, b),
    closed,
    close() { send(8, Buffer.from([0x03, 0xe8])); socket.end(); },
    destroy: () => socket.destroy(),
  };
}

/** Receives the target's N bytes + CRC-32 trailer through a relay; timed from ready (ServerInit for Porthole). */
export async function rawWsStream(url: string, n: number, opts: { rfb: boolean; timeoutMs: number }): Promise<StreamResult> {
  const check = new StreamCheck(n);
  const ws = openRawWs(url, opts.rfb, opts.timeoutMs);
  let t0 = performance.now();
  let t1 = 0;
  ws.ready.then(() => { t0 = performance.now(); }, () => undefined);
  ws.onData((b) => { check.push(b); if (check.complete && !t1) t1 = performance.now(); });
  const { code, error } = await ws.closed;
  const ms = (t1 || performance.now()) - t0;
  const err = error ?? (check.complete ? undefined : `got ${check.received} of ${n + 4} bytes`);
  return { bytes: check.received, ok: check.ok, ms, mibps: n / 1048576 / (ms / 1000), closeCode: code, ...(err ? { error: err } : {}) };
}

/** A round-trip pipe over the lean client. */
export async function rawWsPipe(url: string, rfb: boolean): Promise<{ send(b: Buffer): void; onData(cb: (b: Buffer) => void): void; close(): void }> {
  const ws = openRawWs(url, rfb, 120_000);
  await ws.ready;
  return { send: (b) => ws.send(b), onData: (cb) => ws.onData(cb), close: () => ws.close() };
}
