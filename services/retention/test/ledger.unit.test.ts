import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  inclusionProof,
  MerkleBuilder,
  merkleRoot,
  merkleRootRecursive,
  verifyInclusion,
} from '../src/ledger/merkle.js';
import {
  canonicalJson,
  parseRecord,
  signingKeyFromPem,
  verifyRecordSignature,
} from '../src/ledger/record.js';
import { EXAMPLE_KEY_PEM, example } from './example.js';

const leaves = (n: number) => Array.from({ length: n }, () => randomBytes(32));

describe('merkle', () => {
  it('the streaming builder equals the RFC 6962 recursive definition for every size up to 140', () => {
    for (let n = 0; n <= 140; n++) {
      const l = leaves(n);
      const b = new MerkleBuilder();
      for (const x of l) b.push(x);
      assert.equal(b.count, n);
      assert.deepEqual(b.root(), merkleRootRecursive(l), `n=${n}`);
    }
  });
  it('bottom-up root equals the RFC 6962 recursive definition for every size up to 70', () => {
    for (let n = 0; n <= 70; n++) {
      const l = leaves(n);
      assert.deepEqual(merkleRoot(l), merkleRootRecursive(l), `n=${n}`);
    }
  });
  it('empty tree is SHA-256 of nothing', () => {
    assert.equal(merkleRoot([]).toString('hex'), createHash('sha256').digest('hex'));
  });
  it('inclusion proofs verify, and fail for another leaf, index or root', () => {
    for (const n of [1, 2, 3, 5, 8, 13, 33]) {
      const l = leaves(n);
      const root = merkleRoot(l);
      for (let m = 0; m < n; m++) {
        const p = inclusionProof(l, m);
        assert.ok(verifyInclusion(l[m]!, m, n, p, root), `n=${n} m=${m}`);
        assert.ok(!verifyInclusion(randomBytes(32), m, n, p, root));
        if (n > 1) assert.ok(!verifyInclusion(l[m]!, (m + 1) % n, n, p, root));
      }
    }
  });
});

describe('LEDGER.md worked example', () => {
  const doc = readFileSync(new URL('../../LEDGER.md', import.meta.url), 'utf8');
  const e = example();
  it('the document holds the values this code computes', () => {
    for (const v of [...e.rows, ...e.leaves, e.root, e.canonical, e.sig, e.keyId]) {
      assert.ok(doc.includes(v), `LEDGER.md is missing ${v.slice(0, 60)}…`);
    }
  });
  it('the record parses strictly, is canonical, and its signature verifies', () => {
    const r = parseRecord(JSON.parse(e.canonical));
    assert.notEqual(typeof r, 'string');
    assert.equal(canonicalJson(r), e.canonical);
    const key = signingKeyFromPem(EXAMPLE_KEY_PEM);
    const keys = new Map([[key.keyId, key.publicKey]]);
    assert.equal(verifyRecordSignature(keys, { record: r as never, sig: e.sig }), 'ok');
    const tampered = { ...(r as object), rows: 3 };
    assert.equal(verifyRecordSignature(keys, { record: tampered as never, sig: e.sig }), 'bad_signature');
    assert.equal(verifyRecordSignature(new Map(), { record: r as never, sig: e.sig }), 'unknown_key');
  });
});
