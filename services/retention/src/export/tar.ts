import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A minimal POSIX ustar writer for a bundle download: regular files of one directory, names under
 * 100 bytes, streamed file by file (memory stays flat). Enough for `tar -x`; nothing else.
 */
function header(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s, off, len, 'utf8');
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  if (Buffer.byteLength(name) > 99) throw new RangeError(`tar: name too long: ${name}`);
  put(name, 0, 100);
  put(oct(0o644, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(size, 12), 124, 12);
  put(oct(Math.floor(mtime / 1000), 12), 136, 12);
  put('        ', 148, 8); // checksum field counts as spaces while summing
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** The files of `dir` (sorted, manifest first) as a tar archive under `prefix/`. */
export async function* tarDirectory(dir: string, prefix: string): AsyncGenerator<Buffer> {
  const names = readdirSync(dir).sort((a, b) =>
    a.startsWith('manifest') ? -1 : b.startsWith('manifest') ? 1 : a < b ? -1 : 1,
  );
  for (const n of names) {
    const p = join(dir, n);
    const st = statSync(p);
    if (!st.isFile()) continue;
    yield header(`${prefix}/${n}`, st.size, st.mtimeMs);
    let sent = 0;
    for await (const c of createReadStream(p)) {
      sent += (c as Buffer).length;
      yield c as Buffer;
    }
    if (sent !== st.size) throw new Error(`tar: ${n} changed while being sent`);
    const pad = (512 - (st.size % 512)) % 512;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}
