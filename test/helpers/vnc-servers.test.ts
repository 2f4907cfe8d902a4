/**
 * The VNC test servers' display allocation (vnc-servers.ts): servers started together must get
 * distinct displays, and never one whose VNC port is already taken.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { it } from 'node:test';
import { freeDisplay } from './vnc-servers.js';

it('freeDisplay hands out distinct displays to servers started at once, skipping taken VNC ports', async () => {
  const picked = Array.from({ length: 20 }, () => freeDisplay());
  assert.equal(new Set(picked).size, picked.length, `repeated: ${picked.join(',')}`);
  // Take the next display's port from outside: it must be skipped.
  const servers: Server[] = [];
  try {
    for (let n = 20; n < 99; n++) {
      if (picked.includes(n)) continue;
      const s = createServer();
      const ok = await new Promise<boolean>((resolve) => { s.once('error', () => resolve(false)); s.listen(5900 + n, '127.0.0.1', () => resolve(true)); });
      if (ok) servers.push(s);
    }
    assert.throws(() => freeDisplay(), /no free X display/, 'every remaining port is taken');
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
});
