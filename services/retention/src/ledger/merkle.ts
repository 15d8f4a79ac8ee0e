import { createHash } from 'node:crypto';
import { sql, str, type SqlFragment } from '@mcp-audit/clickhouse';

/**
 * RFC 6962 §2.1 Merkle tree hash: MTH({}) = SHA-256(), MTH({d}) = SHA-256(0x00 ‖ d),
 * MTH(D[n]) = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])), k the largest power of two < n.
 * The functions here take leaf hashes (already SHA-256(0x00 ‖ row)).
 */
export const EMPTY_ROOT = createHash('sha256').digest();

export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(left)
    .update(right)
    .digest();
}

/**
 * The root over leaf hashes, bottom-up: pair neighbours, carry an odd last node up unchanged.
 * That is the same tree as RFC 6962's recursive split (the left subtree is always the perfect
 * tree of the largest power of two below n), and it is how ClickHouse computes it below.
 */
export function merkleRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  let level = leaves.slice();
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/** The RFC 6962 recursive definition, for tests: it must agree with merkleRoot. */
export function merkleRootRecursive(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(merkleRootRecursive(leaves.slice(0, k)), merkleRootRecursive(leaves.slice(k)));
}

/** RFC 6962 §2.1.1 audit path of leaf m in a tree of the given leaves. */
export function inclusionProof(leaves: readonly Buffer[], m: number): Buffer[] {
  if (m < 0 || m >= leaves.length) throw new RangeError('leaf index out of range');
  const path = (d: readonly Buffer[], i: number): Buffer[] => {
    if (d.length <= 1) return [];
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return i < k
      ? [...path(d.slice(0, k), i), merkleRoot(d.slice(k))]
      : [...path(d.slice(k), i - k), merkleRoot(d.slice(0, k))];
  };
  return path(leaves, m);
}

/** RFC 9162 §2.1.3.2: checks an audit path of leaf `index` in a tree of `size` leaves against `root`. */
export function verifyInclusion(
  leaf: Buffer,
  index: number,
  size: number,
  proof: readonly Buffer[],
  root: Buffer,
): boolean {
  if (index >= size || index < 0) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/**
 * Levels computed in ClickHouse: enough for 2^24 leaves, which is also groupArray's element limit
 * (0xFFFFFF) on 18.16. An hour with more events than that cannot be sealed in one array (LEDGER.md).
 */
export const SQL_MERKLE_LEVELS = 24;

/**
 * A SQL expression: the lowercase hex root of `leaves`, an Array(FixedString(32)) of leaf hashes in
 * leaf order. One level is `arrayMap(l -> next(l), [previous])[1]`: the lambda argument works as a
 * let-binding, so the text grows linearly with the levels. (Chaining levels by alias does not work:
 * 18.16 expands aliases textually, exponentially here; one subquery per level works but 18.16
 * re-analyses the inner query at every level, seconds per query.) Lambdas take only their own
 * arguments: a captured column is replicated once per array element, which would be quadratic.
 */
export function merkleRootSql(leaves: SqlFragment, levels = SQL_MERKLE_LEVELS): SqlFragment {
  const one = str(Buffer.from([1]));
  let e = leaves;
  for (let i = 0; i < levels; i++) {
    const a = sql`arrayFilter((x, i) -> i % 2 = 1, l, arrayEnumerate(l))`;
    const b = sql`arrayFilter((x, i) -> i % 2 = 0, l, arrayEnumerate(l))`;
    e = sql`arrayMap(l -> arrayConcat(arrayMap((x, y) -> SHA256(concat(${one}, x, y)), arraySlice(${a}, 1, length(${b})), ${b}), arraySlice(${a}, length(${b}) + 1)), [${e}])[1]`;
  }
  // More leaves than 2^levels leave more than one node: no root rather than a wrong one.
  return sql`arrayMap(l -> if(length(l) = 0, lower(hex(SHA256(''))), if(length(l) = 1, lower(hex(l[1])), '')), [${e}])[1]`;
}

/** Levels enough for `rows` leaves (at least 1). */
export const levelsFor = (rows: number) => Math.max(1, Math.ceil(Math.log2(Math.max(rows, 1))) + 1);
