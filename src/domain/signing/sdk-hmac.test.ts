/**
 * SDK-HMAC-SHA256 verification against the reference vectors (huawei-api.md A.3), the NODE/GO
 * path-encoding quirk, tamper detection, the date window, and a fuzz loop over the parser.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  DATE_SKEW_WINDOW_MS,
  MAX_AUTHORIZATION_LENGTH,
  canonicalQueryString,
  canonicalRequest,
  canonicalUri,
  errorSuffix,
  formatSdkDate,
  parseAuthorization,
  parseSdkDate,
  signRequest,
  verifySignature,
  type ParsedAuthorization,
  type SigningFailure,
  type VerifyResult,
  type WireRequest,
} from './sdk-hmac.js';

const MIN = 60_000;

function parsed(header: string): ParsedAuthorization {
  const p = parseAuthorization(header);
  assert.ok(p.ok, `Authorization should parse: ${header}`);
  return p;
}

/** Parses the request's own Authorization header and verifies it, as the API layer will. */
function verifyWire(req: WireRequest, sk: string, now: Date): VerifyResult {
  const auth = req.headers['authorization'];
  const p = parseAuthorization(typeof auth === 'string' ? auth : undefined);
  return p.ok ? verifySignature(req, p, sk, now) : p;
}

function reason(r: VerifyResult): SigningFailure | 'ok' {
  return r.ok ? 'ok' : r.reason;
}

// --- Reference vectors ----------------------------------------------------------------------

const GO_DATE = '20060102T150405Z';
const GO_NOW = new Date('2006-01-02T15:04:05Z');
const GO_GET_SIG = '5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624';
const GO_POST_SIG = 'cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59';
const GO_POST_BODY = '{"Name":"test","Id":1}\n'; // json.Encoder output ends with a newline

function goRequest(method: 'GET' | 'POST', signature: string): WireRequest {
  return {
    method,
    rawPath: '/path',
    rawQuery: method === 'GET' ? 'limit=1' : 'key=value',
    headers: {
      host: 'example.huaweicloud.com',
      'x-sdk-date': GO_DATE,
      authorization: `SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=${signature}`,
    },
    body: method === 'GET' ? new Uint8Array(0) : Buffer.from(GO_POST_BODY),
  };
}

const NODE_DATE = '20260101T000000Z';
const NODE_NOW = new Date('2026-01-01T00:00:00Z');
const NODE_BODY = '{"remote_console":{"protocol":"vnc","type":"novnc"}}';
const NODE_SIG = 'be176b21f0d72991e45df6cfb619ad6e667d518f638c3df86ea731ae1fa41f27';

function nodeRequest(): WireRequest {
  return {
    method: 'POST',
    rawPath: '/v1/proj123/cloudservers/srv-1/remote_console',
    rawQuery: '',
    headers: {
      accept: 'application/json',
      'content-type': 'application/json',
      'user-agent': 'huaweicloud-usdk-nodejs/3.0',
      'x-project-id': 'proj123',
      'x-sdk-date': NODE_DATE,
      host: '127.0.0.1:8080',
      authorization: `SDK-HMAC-SHA256 Access=TESTAK, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=${NODE_SIG}`,
      'content-length': String(Buffer.byteLength(NODE_BODY)),
    },
    body: Buffer.from(NODE_BODY),
  };
}

describe('reference vectors', () => {
  it('GO GET /path?limit=1 verifies with SecretKey', () => {
    assert.deepEqual(verifyWire(goRequest('GET', GO_GET_SIG), 'SecretKey', GO_NOW), { ok: true });
  });

  it('GO POST /path?key=value with a body ending in \\n verifies', () => {
    assert.deepEqual(verifyWire(goRequest('POST', GO_POST_SIG), 'SecretKey', GO_NOW), { ok: true });
  });

  it('GO POST without the trailing newline in the body does not verify (never re-serialize JSON)', () => {
    const req = { ...goRequest('POST', GO_POST_SIG), body: Buffer.from(GO_POST_BODY.trimEnd()) };
    assert.equal(reason(verifyWire(req, 'SecretKey', GO_NOW)), 'signature_mismatch');
  });

  it('NODE ShowServerRemoteConsole vector verifies with TESTSK', () => {
    const req = nodeRequest();
    assert.equal(createHash('sha256').update(req.body).digest('hex').slice(0, 8), '40a17ab7');
    assert.deepEqual(verifyWire(req, 'TESTSK', NODE_NOW), { ok: true });
  });

  it('each vector fails with a wrong SK', () => {
    assert.equal(reason(verifyWire(goRequest('GET', GO_GET_SIG), 'SecretKey2', GO_NOW)), 'signature_mismatch');
    assert.equal(reason(verifyWire(goRequest('POST', GO_POST_SIG), 'secretKey', GO_NOW)), 'signature_mismatch');
    assert.equal(reason(verifyWire(nodeRequest(), 'TESTSK ', NODE_NOW)), 'signature_mismatch');
  });

  it('GO canonicalQueryString vector', () => {
    const params: [string, string][] = [
      ['limit', '1'],
      ['enable', 'true'],
      ['test', '一 (&=?!#%.*)'],
      ['path', '/tmp/123'],
      ['multi', '3'],
      ['multi', '1'],
      ['multi', '2'],
    ];
    const expected = 'enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29';
    // As encodeURIComponent sends it (NODE querystring leaves *!'() unescaped, like this).
    const raw = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    assert.equal(canonicalQueryString(raw), expected);
    // As GO sends it: fully escaped, lower-case hex accepted too.
    const goRaw = params.map(([k, v]) => `${k}=${Buffer.from(v).toString('hex').replace(/(..)/g, '%$1')}`).join('&');
    assert.equal(canonicalQueryString(goRaw), expected);
  });

  it('the signer reproduces the three reference signatures', () => {
    const get = signRequest(
      { method: 'GET', rawPath: '/path', rawQuery: 'limit=1' },
      { accessKey: 'AccessKey', secretKey: 'SecretKey', now: GO_NOW, signedHeaders: ['x-sdk-date'] },
    );
    assert.equal(get.Authorization, `SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=${GO_GET_SIG}`);
    assert.equal(get['X-Sdk-Date'], GO_DATE);
    const post = signRequest(
      { method: 'POST', rawPath: '/path', rawQuery: 'key=value', body: GO_POST_BODY },
      { accessKey: 'AccessKey', secretKey: 'SecretKey', now: GO_NOW, signedHeaders: ['x-sdk-date'] },
    );
    assert.ok(post.Authorization.endsWith(GO_POST_SIG));
    const node = signRequest(
      {
        method: 'POST',
        rawPath: '/v1/proj123/cloudservers/srv-1/remote_console',
        headers: { 'Content-Type': 'application/json', 'X-Project-Id': 'proj123', Host: '127.0.0.1:8080' },
        body: NODE_BODY,
      },
      { accessKey: 'TESTAK', secretKey: 'TESTSK', now: NODE_NOW, signedHeaders: 'node' },
    );
    assert.equal(node.Authorization, `SDK-HMAC-SHA256 Access=TESTAK, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=${NODE_SIG}`);
  });
});

// --- Canonicalization details -----------------------------------------------------------------

describe('canonicalization', () => {
  it('CanonicalURI always ends in / and encodes with upper-case hex', () => {
    assert.equal(canonicalUri('/v1/p/cloudservers/s/remote_console'), '/v1/p/cloudservers/s/remote_console/');
    assert.equal(canonicalUri(''), '/');
    assert.equal(canonicalUri('/'), '/');
    assert.equal(canonicalUri('/a/'), '/a/');
    assert.equal(canonicalUri('/a%2fb'), '/a%252fb/');
    assert.equal(canonicalUri('/a%2fb', true), '/a%2Fb/');
    assert.equal(canonicalUri("/x(y)*!'", false), '/x%28y%29%2A%21%27/');
  });

  it('query: + is a space (as the route parser reads it), a name without = has an empty value, empty pairs are skipped', () => {
    assert.equal(canonicalQueryString('a=1+2'), 'a=1%202');
    assert.equal(canonicalQueryString('a=1%2B2'), 'a=1%2B2');
    assert.equal(canonicalQueryString('a=1%202'), 'a=1%202');
    assert.equal(canonicalQueryString('flag&&b=2'), 'b=2&flag=');
    assert.equal(canonicalQueryString(''), '');
  });

  it('query names sort by byte order, not UTF-16 order', () => {
    // U+FF5E (EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
    assert.equal(canonicalQueryString(`${encodeURIComponent('😀')}=1&${encodeURIComponent('～')}=2`), '%EF%BD%9E=2&%F0%9F%98%80=1');
  });

  it('malformed percent escapes are kept literally instead of throwing', () => {
    assert.equal(canonicalQueryString('a=%zz&b=%4'), 'a=%25zz&b=%254');
    assert.equal(canonicalUri('/%E4%B8/%', true), '/%E4%B8/%25/');
  });

  it('several values of one header are trimmed and sorted, one line each (GO)', () => {
    const req: WireRequest = { method: 'get', rawPath: '/', rawQuery: '', headers: { 'x-a': [' b ', 'a'], 'x-sdk-date': GO_DATE }, body: new Uint8Array(0) };
    const cr = canonicalRequest(req, ['x-a', 'x-sdk-date']);
    assert.equal(cr, `GET\n/\n\nx-a:a\nx-a:b\nx-sdk-date:${GO_DATE}\n\nx-a;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`);
  });

  it('X-Sdk-Date parsing rejects impossible dates', () => {
    assert.equal(parseSdkDate('20260101T000000Z'), Date.UTC(2026, 0, 1));
    assert.equal(formatSdkDate(new Date(Date.UTC(2026, 0, 1))), '20260101T000000Z');
    for (const bad of ['20261301T000000Z', '20260230T000000Z', '20260101T240000Z', '2026-01-01T00:00:00Z', '20260101T000000', ' 20260101T000000Z']) {
      assert.equal(parseSdkDate(bad), null, bad);
    }
  });
});

// --- Tampering ---------------------------------------------------------------------------------

const AK = 'PORTHOLETESTAK';
const SK = 'porthole-test-secret-key';
const NOW = new Date('2026-03-01T12:00:00Z');

/** A NODE-style signed request with a query, so that every part can be tampered with. */
function signedRequest(overrides: Partial<WireRequest> = {}, selection: 'node' | 'go' = 'node'): WireRequest {
  const base: WireRequest = {
    method: 'POST',
    rawPath: '/v1/proj123/cloudservers/srv-1/remote_console',
    rawQuery: 'marker=abc&limit=10',
    headers: { 'content-type': 'application/json', 'x-project-id': 'proj123', host: 'gw.example:8443', 'user-agent': 'huaweicloud-usdk-go/3.0' },
    body: Buffer.from(NODE_BODY),
    ...overrides,
  };
  const signed = signRequest(base, { accessKey: AK, secretKey: SK, now: NOW, signedHeaders: selection });
  return { ...base, headers: { ...base.headers, 'x-sdk-date': signed['X-Sdk-Date'], authorization: signed.Authorization } };
}

/** Changes one character (one byte for ASCII) at position i. */
function flip(s: string, i: number): string {
  const c = s.charCodeAt(i);
  return s.slice(0, i) + String.fromCharCode(c === 0x7a ? 0x79 : c + 1) + s.slice(i + 1);
}

describe('tampering', () => {
  it('the untouched request verifies (Node-style and Go-style header sets)', () => {
    assert.deepEqual(verifyWire(signedRequest(), SK, NOW), { ok: true });
    const go = signedRequest({}, 'go');
    assert.match(String(go.headers['authorization']), /SignedHeaders=user-agent;x-project-id;x-sdk-date,/);
    assert.deepEqual(verifyWire(go, SK, NOW), { ok: true });
  });

  it('a one-byte change in the method fails', () => {
    assert.equal(reason(verifyWire({ ...signedRequest(), method: 'PUT' }, SK, NOW)), 'signature_mismatch');
    assert.equal(reason(verifyWire({ ...signedRequest(), method: 'POSU' }, SK, NOW)), 'signature_mismatch');
  });

  it('a one-byte change anywhere in the path fails', () => {
    const req = signedRequest();
    for (let i = 0; i < req.rawPath.length; i++) {
      assert.equal(reason(verifyWire({ ...req, rawPath: flip(req.rawPath, i) }, SK, NOW)), 'signature_mismatch', `path byte ${i}`);
    }
    assert.equal(reason(verifyWire({ ...req, rawPath: req.rawPath + '/x' }, SK, NOW)), 'signature_mismatch');
  });

  it('a one-byte change anywhere in the query fails', () => {
    const req = signedRequest();
    for (let i = 0; i < req.rawQuery.length; i++) {
      assert.equal(reason(verifyWire({ ...req, rawQuery: flip(req.rawQuery, i) }, SK, NOW)), 'signature_mismatch', `query byte ${i}`);
    }
    assert.equal(reason(verifyWire({ ...req, rawQuery: '' }, SK, NOW)), 'signature_mismatch');
  });

  it('reordering query parameters still verifies (the query is canonicalized)', () => {
    assert.deepEqual(verifyWire({ ...signedRequest(), rawQuery: 'limit=10&marker=abc' }, SK, NOW), { ok: true });
  });

  it('a one-byte change in any signed header value fails; unsigned headers may change', () => {
    const req = signedRequest();
    for (const name of ['content-type', 'x-project-id', 'host', 'x-sdk-date']) {
      const value = String(req.headers[name]);
      for (let i = 0; i < value.length; i++) {
        const r = reason(verifyWire({ ...req, headers: { ...req.headers, [name]: flip(value, i) } }, SK, NOW));
        // A changed date may also stop parsing or leave the window; all of them are refusals.
        assert.notEqual(r, 'ok', `${name} byte ${i}`);
        if (name !== 'x-sdk-date') assert.equal(r, 'signature_mismatch', `${name} byte ${i}`);
      }
    }
    assert.deepEqual(verifyWire({ ...req, headers: { ...req.headers, 'user-agent': 'curl/8', accept: '*/*' } }, SK, NOW), { ok: true });
  });

  it('a one-byte change anywhere in the body fails', () => {
    const req = signedRequest();
    for (let i = 0; i < req.body.length; i++) {
      const body = Buffer.from(req.body);
      body[i] = (body[i] ?? 0) ^ 0x01;
      assert.equal(reason(verifyWire({ ...req, body }, SK, NOW)), 'signature_mismatch', `body byte ${i}`);
    }
    assert.equal(reason(verifyWire({ ...req, body: Buffer.concat([req.body, Buffer.from('\n')]) }, SK, NOW)), 'signature_mismatch');
  });

  it('a one-character change in the signature fails', () => {
    const req = signedRequest();
    const auth = String(req.headers['authorization']);
    const at = auth.length - 1;
    const changed = auth.slice(0, at) + (auth[at] === '0' ? '1' : '0');
    assert.equal(reason(verifyWire({ ...req, headers: { ...req.headers, authorization: changed } }, SK, NOW)), 'signature_mismatch');
  });

  it('a wrong SK fails', () => {
    assert.equal(reason(verifyWire(signedRequest(), SK + 'x', NOW)), 'signature_mismatch');
    assert.equal(reason(verifyWire(signedRequest(), '', NOW)), 'signature_mismatch');
  });
});

// --- Dates and headers -------------------------------------------------------------------------

describe('dates and required headers', () => {
  it('the window constant is 15 minutes', () => {
    assert.equal(DATE_SKEW_WINDOW_MS, 15 * MIN);
  });

  it('14 min off either way passes, 16 min off fails with date_skew, the edge passes', () => {
    const req = signedRequest();
    for (const delta of [-14 * MIN, 14 * MIN, 15 * MIN, -15 * MIN]) assert.deepEqual(verifyWire(req, SK, new Date(NOW.getTime() + delta)), { ok: true }, `${delta}`);
    for (const delta of [-16 * MIN, 16 * MIN, 15 * MIN + 1000]) assert.equal(reason(verifyWire(req, SK, new Date(NOW.getTime() + delta))), 'date_skew', `${delta}`);
    assert.equal(reason(verifyWire(req, SK, new Date(NaN))), 'date_skew');
  });

  it('an unsigned X-Sdk-Date fails with date_unsigned even when the signature is right', () => {
    const base = signedRequest();
    const signed = signRequest(
      { ...base, headers: { host: 'gw.example:8443', 'x-project-id': 'proj123', 'content-type': 'application/json' } },
      { accessKey: AK, secretKey: SK, now: NOW, signedHeaders: ['content-type', 'host', 'x-project-id'] },
    );
    const req = { ...base, headers: { ...base.headers, 'x-sdk-date': signed['X-Sdk-Date'], authorization: signed.Authorization } };
    assert.equal(reason(verifyWire(req, SK, NOW)), 'date_unsigned');
  });

  it('a missing or malformed X-Sdk-Date fails', () => {
    const req = signedRequest();
    const { 'x-sdk-date': _date, ...without } = req.headers;
    assert.equal(reason(verifyWire({ ...req, headers: without }, SK, NOW)), 'date_missing');
    assert.equal(reason(verifyWire({ ...req, headers: { ...req.headers, 'x-sdk-date': '2026-03-01T12:00:00Z' } }, SK, NOW)), 'date_malformed');
    assert.equal(reason(verifyWire({ ...req, headers: { ...req.headers, 'x-sdk-date': [String(req.headers['x-sdk-date']), '20260301T120000Z'] } }, SK, NOW)), 'date_missing');
  });

  it('a signed header that is not in the request fails with header_missing', () => {
    const req = signedRequest();
    const { 'x-project-id': _p, ...without } = req.headers;
    assert.equal(reason(verifyWire({ ...req, headers: without }, SK, NOW)), 'header_missing');
  });

  it('a signed header named like an Object.prototype property is looked up as an own property', () => {
    const req = signedRequest();
    const p = parsed(String(req.headers['authorization']).replace('SignedHeaders=', 'SignedHeaders=constructor;'));
    assert.equal(reason(verifySignature(req, p, SK, NOW)), 'header_missing');
  });
});

// --- Path quirk and payload header --------------------------------------------------------------

describe('NODE double-encoding quirk and payload hash', () => {
  const projectId = 'p/1 x';

  it('NODE: encodeURIComponent(project id) in the path, each segment encoded again by the signer, verifies', () => {
    const rawPath = `/v1/${encodeURIComponent(projectId)}/cloudservers/srv-1/remote_console`;
    assert.equal(rawPath, '/v1/p%2F1%20x/cloudservers/srv-1/remote_console');
    assert.equal(canonicalUri(rawPath), '/v1/p%252F1%2520x/cloudservers/srv-1/remote_console/');
    const req = signedRequest({ rawPath, headers: { 'content-type': 'application/json', 'x-project-id': projectId, host: 'gw.example:8443' } });
    assert.deepEqual(verifyWire(req, SK, NOW), { ok: true });
  });

  it('GO: signing the decoded path verifies too', () => {
    const rawPath = '/v1/p%201x/cloudservers/srv-1/remote_console';
    const base: WireRequest = { method: 'POST', rawPath, rawQuery: '', headers: { 'x-project-id': 'p 1x', 'user-agent': 'huaweicloud-usdk-go/3.0' }, body: Buffer.from(NODE_BODY) };
    const signed = signRequest(base, { accessKey: AK, secretKey: SK, now: NOW, signedHeaders: 'go', decodePath: true });
    const req = { ...base, headers: { ...base.headers, 'x-sdk-date': signed['X-Sdk-Date'], authorization: signed.Authorization } };
    assert.deepEqual(verifyWire(req, SK, NOW), { ok: true });
  });

  // security #14: one canonical form per request. A query signed with `%2B` (a literal plus) must not verify when
  // sent as `+`, which the route's query parser reads as a space: the signature would cover another value.
  it('security #14: a query signed as %2B does not verify when sent as + (read as a space)', () => {
    const req = signedRequest({ rawQuery: 'name=a%2Bb' });
    assert.deepEqual(verifyWire(req, SK, NOW), { ok: true });
    assert.equal(reason(verifyWire({ ...req, rawQuery: 'name=a+b' }, SK, NOW)), 'signature_mismatch');
    // And the other way round: a space sent as + verifies only as a space.
    const spaced = signedRequest({ rawQuery: 'name=a+b' });
    assert.deepEqual(verifyWire(spaced, SK, NOW), { ok: true });
    assert.deepEqual(verifyWire({ ...spaced, rawQuery: 'name=a%20b' }, SK, NOW), { ok: true });
    assert.equal(reason(verifyWire({ ...spaced, rawQuery: 'name=a%2Bb' }, SK, NOW)), 'signature_mismatch');
  });

  // security #14: a double-encoded path (`%2541` = the literal text `%41`) names another resource than `%41` (= `A`),
  // yet its decoded (GO) form equals the NODE form of the single-encoded path, so one signature covered both.
  it('security #14: a signature over a path does not verify for its double-encoded twin', () => {
    const req = signedRequest({ rawPath: '/v1/proj123/cloudservers/srv%41/remote_console' });
    assert.deepEqual(verifyWire(req, SK, NOW), { ok: true });
    assert.equal(reason(verifyWire({ ...req, rawPath: '/v1/proj123/cloudservers/srv%2541/remote_console' }, SK, NOW)), 'signature_mismatch');
    // A GO client's signature over the decoded path still verifies for the path it sent.
    const base: WireRequest = { method: 'POST', rawPath: '/v1/proj123/cloudservers/srv%41/remote_console', rawQuery: '', headers: { 'x-project-id': 'proj123' }, body: Buffer.from(NODE_BODY) };
    const signed = signRequest(base, { accessKey: AK, secretKey: SK, now: NOW, signedHeaders: 'go', decodePath: true });
    const goReq = { ...base, headers: { ...base.headers, 'x-sdk-date': signed['X-Sdk-Date'], authorization: signed.Authorization } };
    assert.deepEqual(verifyWire(goReq, SK, NOW), { ok: true });
  });

  it('X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD is honoured: the body is not covered', () => {
    const req = signedRequest({
      headers: { 'content-type': 'application/octet-stream', 'x-sdk-content-sha256': 'UNSIGNED-PAYLOAD', 'x-project-id': 'proj123', host: 'gw.example:8443' },
    });
    assert.match(String(req.headers['authorization']), /SignedHeaders=content-type;host;x-project-id;x-sdk-content-sha256;x-sdk-date,/);
    assert.deepEqual(verifyWire(req, SK, NOW), { ok: true });
    assert.deepEqual(verifyWire({ ...req, body: Buffer.from('something else') }, SK, NOW), { ok: true });
    const p = parsed(String(req.headers['authorization']));
    assert.equal(reason(verifySignature(req, p, SK, NOW, { allowUnsignedPayload: false })), 'payload_unsigned');
  });

  it('an X-Sdk-Content-Sha256 hash that the body does not have fails', () => {
    const hash = createHash('sha256').update(NODE_BODY).digest('hex');
    const req = signedRequest({ headers: { 'content-type': 'application/json', 'x-sdk-content-sha256': hash, 'x-project-id': 'proj123', host: 'gw.example:8443' } });
    assert.deepEqual(verifyWire(req, SK, NOW), { ok: true });
    assert.equal(reason(verifyWire({ ...req, body: Buffer.from(NODE_BODY + ' ') }, SK, NOW)), 'payload_hash_mismatch');
  });
});

// --- Authorization parsing ---------------------------------------------------------------------

describe('parseAuthorization', () => {
  const sig = 'a'.repeat(64);

  it('parses the documented format', () => {
    assert.deepEqual(parseAuthorization(`SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=${sig}`), {
      ok: true,
      algorithm: 'SDK-HMAC-SHA256',
      accessKey: 'AK1',
      signedHeaders: ['host', 'x-sdk-date'],
      signature: sig,
    });
  });

  it('distinguishes missing, unknown, unsupported and malformed', () => {
    const cases: [string | undefined, SigningFailure][] = [
      [undefined, 'authorization_missing'],
      ['   ', 'authorization_missing'],
      ['Bearer abc', 'algorithm_unknown'],
      ['AWS4-HMAC-SHA256 Credential=x', 'algorithm_unknown'],
      ['sdk-hmac-sha256 Access=a, SignedHeaders=x-sdk-date, Signature=' + sig, 'algorithm_unknown'],
      ['V11-HMAC-SHA256 Credential=AK/20260101/r/ecs, SignedHeaders=x-sdk-date, Signature=' + sig, 'algorithm_unsupported'],
      ['SDK-ECDSA-P256-SHA256 Access=a, SignedHeaders=x-sdk-date, Signature=' + sig, 'algorithm_unsupported'],
      ['SDK-SM2-SM3 Access=a, SignedHeaders=x-sdk-date, Signature=' + sig, 'algorithm_unsupported'],
      ['SDK-HMAC-SM3 Access=a, SignedHeaders=x-sdk-date, Signature=' + sig, 'algorithm_unsupported'],
      ['SDK-HMAC-SHA256', 'authorization_malformed'],
      ['SDK-HMAC-SHA256 Access=a, SignedHeaders=x-sdk-date, Signature=' + sig.toUpperCase(), 'authorization_malformed'],
      ['SDK-HMAC-SHA256 Access=a, SignedHeaders=x-sdk-date, Signature=' + sig + 'a', 'authorization_malformed'],
      ['SDK-HMAC-SHA256 Access=a, SignedHeaders=X-Sdk-Date, Signature=' + sig, 'authorization_malformed'],
      ['SDK-HMAC-SHA256 Access=a, SignedHeaders=host;;x-sdk-date, Signature=' + sig, 'authorization_malformed'],
      ['SDK-HMAC-SHA256 Access=a, SignedHeaders=host;host, Signature=' + sig, 'authorization_malformed'],
      ['SDK-HMAC-SHA256 Access=a, SignedHeaders=' + Array.from({ length: 65 }, (_, i) => `h${i}`).join(';') + ', Signature=' + sig, 'authorization_malformed'],
      ['SDK-HMAC-SHA256 Access=' + 'a'.repeat(MAX_AUTHORIZATION_LENGTH) + ', SignedHeaders=x-sdk-date, Signature=' + sig, 'authorization_malformed'],
    ];
    for (const [header, expected] of cases) {
      const p = parseAuthorization(header);
      assert.equal(p.ok ? 'ok' : p.reason, expected, String(header).slice(0, 80));
    }
  });

  it('fuzz: random and mutated headers and requests never throw (bounded)', () => {
    let seed = 0x5eed;
    const rand = (n: number): number => {
      // mulberry32: deterministic, so a failure is reproducible
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) % n);
    };
    const alphabet = 'SDK-HMAC-SHA256 Access=,;SignedHeaders=Signature=abcdef0123456789 \t%\u0000\u00ff\u4e00\ud800';
    const valid = String(signedRequest().headers['authorization']);
    const validParsed = parsed(valid);
    const req = signedRequest();
    let parsedOk = 0;
    for (let i = 0; i < 3000; i++) {
      let header: string;
      if (i % 3 === 0) {
        header = Array.from({ length: rand(200) }, () => alphabet.charAt(rand(alphabet.length))).join('');
      } else {
        header = valid;
        for (let k = 0, edits = 1 + rand(4); k < edits; k++) {
          const at = rand(header.length + 1);
          const op = rand(3);
          const ch = alphabet.charAt(rand(alphabet.length));
          header = op === 0 ? header.slice(0, at) + ch + header.slice(at) : op === 1 ? header.slice(0, at) + header.slice(at + 1) : header.slice(0, at) + ch + header.slice(at + 1);
        }
      }
      const p = parseAuthorization(header);
      if (!p.ok) {
        assert.equal(typeof errorSuffix(p.reason), 'string');
        continue;
      }
      parsedOk++;
      const garbage = Array.from({ length: rand(40) }, () => alphabet.charAt(rand(alphabet.length))).join('');
      const r = verifySignature({ ...req, rawPath: i % 2 ? req.rawPath : '/' + garbage, rawQuery: i % 5 ? req.rawQuery : garbage }, p, SK, NOW);
      // Only an unchanged signature and header list may verify. The AK is not signed: the caller
      // looks the SK up by AK, and this loop uses one SK for every AK.
      if (r.ok) assert.deepEqual([p.signedHeaders, p.signature], [validParsed.signedHeaders, validParsed.signature]);
    }
    assert.ok(parsedOk > 0, 'the mutations should sometimes still parse, so verification is exercised too');
  });
});

describe('errorSuffix', () => {
  it('gives the documented APIGW.0301 suffixes and never the credentials', () => {
    assert.equal(errorSuffix('signature_mismatch'), ': verify aksk signature fail');
    assert.equal(errorSuffix('date_skew'), ': calc ak sk signature fail:signature expired');
    assert.equal(errorSuffix('ak_unknown'), ': Get secretKey failed,ak:***,err:ak not exist');
    assert.equal(errorSuffix('ak_locked'), ': AK access failed to reach the limit,forbidden.');
    const all: SigningFailure[] = [
      'authorization_missing', 'authorization_malformed', 'algorithm_unsupported', 'algorithm_unknown', 'date_missing', 'date_unsigned',
      'date_malformed', 'date_skew', 'header_missing', 'payload_hash_mismatch', 'payload_unsigned', 'signature_mismatch', 'ak_unknown', 'ak_locked',
    ];
    for (const r of all) {
      const s = errorSuffix(r);
      assert.match(s, /^: /);
      for (const secret of [AK, SK, NODE_SIG, 'TESTAK']) assert.ok(!s.includes(secret));
    }
  });
});
