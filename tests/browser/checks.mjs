// What the browser test scripts share: pass/fail checks with a summary,
// a timestamped log printed when something failed, and `realtimer echo` as
// a child process.
import { spawn } from 'node:child_process';

/**
 * A set of checks: `ok(name, cond, detail)` prints `ok   name` or
 * `FAIL name detail`; `log(line)` keeps a line stamped with the seconds
 * since start; `finish()` prints the log when anything failed, then
 * "N passed, N failed", and returns the exit code.
 */
export function checks() {
  const t0 = Date.now();
  const logs = [];
  const c = { passed: 0, failed: 0 };
  c.stamp = () => ((Date.now() - t0) / 1000).toFixed(3).padStart(8);
  c.ok = (name, cond, detail = '') => {
    if (cond) { c.passed++; console.log(`ok   ${name}`); } else { c.failed++; console.log(`FAIL ${name} ${detail}`); }
  };
  c.log = (line) => logs.push(`${c.stamp()} ${line}`);
  c.finish = () => {
    if (c.failed) for (const line of logs) console.log(`  ${line}`);
    console.log(`${c.passed} passed, ${c.failed} failed`);
    return c.failed ? 1 : 0;
  };
  return c;
}

/**
 * Starts `realtimer echo` (the binary `realtimer`) in `room` of the server
 * at `base`, its output lines going to `log`; `exited` resolves to its
 * exit code (or signal), `output` holds what it printed.
 */
export function startEcho(realtimer, base, room, log) {
  const child = spawn(realtimer, ['echo', '--server', base, '--room', room, '--loopback'], {
    env: { ...process.env, REALTIMER_LOG: process.env.REALTIMER_LOG || 'info,realtimer=debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const echo = { child, output: '' };
  const take = (d) => {
    echo.output += d;
    for (const line of String(d).split('\n')) if (line) log(`echo: ${line}`);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  echo.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  return echo;
}
