// Opens the data channel interop page in headless Chromium (or Firefox with
// --firefox) and waits for its verdict.   node dc-interop.mjs URL [--mdns] [--firefox]
// --mdns: without --use-fake-ui-for-media-stream, so Chromium hides its host
// addresses behind mDNS names, as for any page without camera permission.
// Prints `RESULT {"passed":[...],"failed":[...]}` and exits 0 when nothing failed.
import { FAKE_MEDIA, launchChromium, launchFirefox } from './launch.mjs';

const url = process.argv[2];
const mdns = process.argv.includes('--mdns');
const firefox = process.argv.includes('--firefox');
if (!url) {
  console.error('usage: node dc-interop.mjs URL');
  process.exit(2);
}
const browser = firefox
  ? await launchFirefox()
  : await launchChromium(FAKE_MEDIA.filter((f) => !(mdns && f === '--use-fake-ui-for-media-stream')));
let code = 1;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(url);
  // playwright's waitForFunction takes (fn, arg, options), puppeteer's (fn, options).
  if (firefox) await page.waitForFunction(() => window.__result, { timeout: 120000 });
  else await page.waitForFunction(() => window.__result, null, { timeout: 120000 });
  const result = await page.evaluate(() => window.__result);
  console.log(`RESULT ${JSON.stringify(result)}`);
  code = result.failed.length === 0 ? 0 : 1;
} catch (e) {
  console.log(`ERROR ${e.message}`);
} finally {
  await browser.close();
}
process.exit(code);
