/**
 * Where console backends may be: `backends.allowed_networks`, the operator's allow-list of CIDRs
 * (IPv4 and IPv6; a bare address is a /32 or /128), host names (`kvm-7.example`, matched without
 * case) and name suffixes (`*.vnc.example`: any name below it). Empty = anywhere (the default).
 *
 * Without it a tenant administrator could point console endpoints at any host and port and read
 * the prober's verdict: a port scanner inside the gateway's network (security review #10). So:
 *  - when an endpoint is set (admin API, fleet files), `hostProblem` refuses an address outside the
 *    list and a name that is neither listed nor checkable at dial time (a list without CIDRs);
 *  - when a backend is dialled (console relay, prober), `connect` refuses an address outside the list
 *    before any packet is sent, and resolves an unlisted name itself, keeping only the addresses
 *    inside the list and connecting to those it checked — a name re-pointed after it was set (DNS
 *    rebinding) reaches nothing outside the list. A listed name is trusted with whatever it resolves to.
 * Matching uses node:net BlockList; IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) count as IPv4.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, Socket, connect, isIP, type LookupFunction, type NetConnectOpts } from 'node:net';

/** The error a refused dial ends with (`code`); its message names the host, for the log only. */
export const BACKEND_NOT_ALLOWED = 'EBACKENDNOTALLOWED';

const NAME_RE = /^(?:\*\.)?(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** An IPv4-mapped IPv6 address as its IPv4 form; anything else unchanged. */
function unmapped(address: string): string {
  const m = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address.replace(/^\[|\]$/g, ''));
  return m && isIP(m[1]!) === 4 ? m[1]! : address.replace(/^\[|\]$/g, '');
}

function notAllowed(host: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`backend ${host} is outside backends.allowed_networks`);
  err.code = BACKEND_NOT_ALLOWED;
  return err;
}

export class BackendNetworks {
  readonly #cidrs = new BlockList();
  #cidrCount = 0;
  readonly #names = new Set<string>();
  readonly #suffixes: string[] = [];
  /** Exact `host:port` endpoints allowed besides the list (the embedded demo desktop). */
  readonly #endpoints = new Set<string>();

  /** Parses the entries; throws an Error naming the first bad one. */
  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const e = raw.trim();
      const slash = e.indexOf('/');
      const addr = unmapped(slash < 0 ? e : e.slice(0, slash));
      const family = isIP(addr);
      if (family !== 0) {
        const max = family === 4 ? 32 : 128;
        const prefix = slash < 0 ? max : /^\d{1,3}$/.test(e.slice(slash + 1)) ? Number(e.slice(slash + 1)) : NaN;
        if (!(prefix >= 0 && prefix <= max)) throw new Error(`${JSON.stringify(raw)} has a bad prefix length (0–${max})`);
        this.#cidrs.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
        this.#cidrCount++;
      } else if (slash < 0 && NAME_RE.test(e)) {
        const name = e.toLowerCase().replace(/\.$/, '');
        if (name.startsWith('*.')) this.#suffixes.push(name.slice(1));
        else this.#names.add(name);
      } else {
        throw new Error(`${JSON.stringify(raw)} is neither a CIDR (10.0.0.0/8, fd00::/8), an address nor a host name (kvm-1.example, *.vnc.example)`);
      }
    }
  }

  /** True when the list is empty: every backend is allowed. */
  get unrestricted(): boolean {
    return this.#cidrCount === 0 && this.#names.size === 0 && this.#suffixes.length === 0;
  }

  /** Allows one exact endpoint besides the list (the embedded demo desktop on the loopback). */
  allowEndpoint(host: string, port: number): void {
    this.#endpoints.add(`${unmapped(host).toLowerCase()}:${port}`);
  }

  /** Is this address (v4 or v6) inside a listed network? */
  allowsAddress(address: string): boolean {
    if (this.unrestricted) return true;
    const a = unmapped(address);
    const family = isIP(a);
    return family !== 0 && this.#cidrs.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** Is this host name listed (by name or suffix)? */
  private listsName(host: string): boolean {
    const name = host.toLowerCase().replace(/\.$/, '');
    return this.#names.has(name) || this.#suffixes.some((s) => name.endsWith(s) && name.length > s.length);
  }

  /** When an endpoint is set: why `host` may not be a backend, or null. The reason is safe to show. */
  hostProblem(host: string, port: number): string | null {
    if (this.unrestricted || this.#endpoints.has(`${unmapped(host).toLowerCase()}:${port}`)) return null;
    if (isIP(unmapped(host)) !== 0) return this.allowsAddress(host) ? null : `host ${host} is outside the gateway's allowed backend networks (backends.allowed_networks)`;
    if (this.listsName(host)) return null;
    // An unlisted name is resolved and checked each time it is dialled; without CIDRs nothing could match.
    return this.#cidrCount > 0 ? null : `host ${host} is not one of the gateway's allowed backend hosts (backends.allowed_networks)`;
  }

  /**
   * net.connect for a backend, refusing what is outside the list before connecting (the socket then
   * emits an error with code EBACKENDNOTALLOWED, like any connect failure).
   */
  connect(opts: NetConnectOpts & { host: string; port: number }): Socket {
    if (this.unrestricted || this.#endpoints.has(`${unmapped(opts.host).toLowerCase()}:${opts.port}`)) return connect(opts);
    if (isIP(unmapped(opts.host)) !== 0) {
      if (this.allowsAddress(opts.host)) return connect(opts);
      const s = new Socket();
      process.nextTick(() => s.destroy(notAllowed(opts.host)));
      return s;
    }
    if (this.listsName(opts.host)) return connect(opts);
    return connect({ ...opts, lookup: this.lookup });
  }

  /** A dns.lookup that keeps only allowed addresses (what net.connect then connects to). */
  private readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '');
      const allowed = addresses.filter((a) => this.allowsAddress(a.address));
      if (allowed.length === 0) return callback(notAllowed(hostname), '');
      if (options.all) return callback(null, allowed);
      return callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}
