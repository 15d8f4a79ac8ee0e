// Preload for profiling a service the benches start (Node 20 refuses --cpu-prof in NODE_OPTIONS):
//   BENCH_INGESTER_NODE_OPTIONS="--import $PWD/test/bench/cpu-profile.mjs" CPU_PROFILE_DIR=/tmp/prof
// Samples the whole process and writes <dir>/<pid>.cpuprofile when it exits (Chrome DevTools format);
// scripts/cpuprofile-top.mjs prints its top functions.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env.CPU_PROFILE_DIR || '.';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 1000 });
session.post('Profiler.start');
process.on('exit', () => {
  // The same-thread session answers synchronously, so this completes before the process ends.
  session.post('Profiler.stop', (err, res) => {
    if (err) return;
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
  });
});
