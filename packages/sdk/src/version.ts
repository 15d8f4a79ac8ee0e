import { readFileSync } from 'node:fs';

/** This package's version (`source.version` of the events it emits by default). */
export const SDK_VERSION: string = (() => {
  try {
    // dist/src/version.js → packages/sdk/package.json
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
