import { createHash, hash } from 'node:crypto';

/**
 * RFC 6962 §2.1 Merkle tree hash: MTH({}) = SHA-256(), MTH({d}) = SHA-256(0x00 ‖ d),
 * MTH(D[n]) = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])), k the largest power of two < n.
 * The functions here take leaf hashes (already SHA-256(0x00 ‖ row)).
 */
export const EMPTY_ROOT = createHash('sha256').digest();

const pair = Buffer.alloc(65);
pair[0] = 1;

export function nodeHash(left: Buffer, right: Buffer): Buffer {
  // One-shot hash over a reused buffer: about twice as fast as createHash().update()… per node.
  left.copy(pair, 1);
  right.copy(pair, 33);
  return hash('sha256', pair, 'buffer');
}

/**
 * The same root, built incrementally from leaves in order, in O(log n) memory: a stack of the
 * perfect subtrees so far (heights strictly decreasing); at the end they are folded right to left,
 * which is RFC 6962's split at the largest power of two below n.
 */
export class MerkleBuilder {
  private readonly nodes: Buffer[] = [];
  private readonly heights: number[] = [];
  count = 0;

  push(leaf: Buffer): void {
    let node = leaf;
    let height = 0;
    while (this.heights.length > 0 && this.heights[this.heights.length - 1] === height) {
      node = nodeHash(this.nodes.pop()!, node);
      this.heights.pop();
      height++;
    }
    this.nodes.push(node);
    this.heights.push(height);
    this.count++;
  }

  root(): Buffer {
    if (this.nodes.length === 0) return EMPTY_ROOT;
    let r = this.nodes[this.nodes.length - 1]!;
    for (let i = this.nodes.length - 2; i >= 0; i--) r = nodeHash(this.nodes[i]!, r);
    return Buffer.from(r);
  }
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
