import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { BACKEND_NOT_ALLOWED, BackendNetworks } from './backend-networks.js';

describe('backend networks (security #10)', () => {
  it('matches IPv4 and IPv6 CIDRs, bare addresses, IPv4-mapped IPv6, names and *.suffix names', () => {
    const n = new BackendNetworks(['10.0.0.0/8', '192.0.2.7', 'fd00::/8', 'kvm-1.example', '*.vnc.example']);
    assert.equal(n.hostProblem('10.200.0.1', 5900), null);
    assert.equal(n.hostProblem('192.0.2.7', 5900), null);
    assert.notEqual(n.hostProblem('192.0.2.8', 5900), null);
    assert.equal(n.hostProblem('fd12::1', 5900), null);
    assert.notEqual(n.hostProblem('fe80::1', 5900), null);
    assert.notEqual(n.hostProblem('::ffff:127.0.0.1', 5900), null, 'a mapped loopback is the loopback');
    assert.equal(n.hostProblem('::ffff:10.1.2.3', 5900), null);
    assert.equal(n.hostProblem('KVM-1.example', 5900), null);
    assert.equal(n.hostProblem('a.b.vnc.example', 5900), null);
    assert.equal(n.hostProblem('unlisted.example', 5900), null, 'with CIDRs, names are checked when dialled');
    assert.notEqual(new BackendNetworks(['kvm-1.example']).hostProblem('other.example', 5900), null, 'without CIDRs, only listed names');
    assert.equal(new BackendNetworks([]).hostProblem('169.254.169.254', 80), null, 'empty = anywhere');
  });

  it('refuses bad entries', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'not a host', '10.0.0.0/x', 'a..b']) assert.throws(() => new BackendNetworks([bad]), /allowed|prefix|neither/, bad);
  });

  it('never connects to an address outside the list, whether given or resolved', async () => {
    let connections = 0;
    const server = createServer((s) => { connections++; s.destroy(); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const n = new BackendNetworks(['10.0.0.0/8']);
      for (const host of ['127.0.0.1', 'localhost']) {
        const err = await new Promise<NodeJS.ErrnoException>((resolve) => { n.connect({ host, port }).once('error', resolve); });
        assert.equal(err.code, BACKEND_NOT_ALLOWED, host);
      }
      assert.equal(connections, 0);
      const open = new BackendNetworks(['127.0.0.0/8']);
      await new Promise<void>((resolve, reject) => { const s = open.connect({ host: 'localhost', port, family: 4 }); s.once('connect', () => { s.destroy(); resolve(); }); s.once('error', reject); });
      for (let i = 0; i < 100 && connections === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(connections, 1, 'an allowed resolved address is connected to');
    } finally {
      server.close();
    }
  });
});
