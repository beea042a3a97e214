// Headless Chromium as every browser test here starts it: Debian's binary
// (CHROMIUM_PATH overrides), no sandbox (CI runs as root), nothing that
// reaches the network on its own, and loopback candidates allowed (without
// that flag a loopback peer connection never opens). See INTEROP.md.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE_FLAGS = [
  '--allow-loopback-in-peer-connection',
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Fake camera and microphone, granted without a prompt, and autoplay. */
export const FAKE_MEDIA = [
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Launches headless Chromium with the common flags and `extra` ones;
 * `executablePath` runs another binary or a wrapper (e.g. one that starts
 * Chromium in a network namespace).
 */
export function launchChromium(extra = [], executablePath = null) {
  return chromium.launch({
    executablePath: executablePath || process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [...BASE_FLAGS, ...extra],
  });
}

/**
 * Launches headless Firefox ESR (Debian's; FIREFOX_PATH overrides) through
 * puppeteer-core over WebDriver BiDi, with the prefs INTEROP.md lists: fake
 * camera and microphone granted without a prompt (without the permissions
 * Firefox gathers only the default route's address) and loopback
 * candidates. `caFile`: a CA (PEM) the profile trusts for TLS servers, for
 * HTTPS pages and TURN over TLS: Firefox checks a `turns:` server's
 * certificate with its own store (a BiDi session's acceptInsecureCerts
 * loads the page, but TURN over TLS still gathers nothing).
 */
export async function launchFirefox({ caFile = null } = {}) {
  const puppeteer = (await import('puppeteer-core')).default;
  return puppeteer.launch({
    browser: 'firefox',
    ...(caFile ? { userDataDir: firefoxProfileTrusting(caFile) } : {}),
    executablePath: process.env.FIREFOX_PATH || '/usr/bin/firefox-esr',
    headless: true,
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'permissions.default.camera': 1,
      'permissions.default.microphone': 1,
      'media.peerconnection.ice.loopback': true,
      'media.autoplay.default': 0,
    },
  });
}

/**
 * A fresh Firefox profile folder whose NSS store trusts `caFile` to issue
 * server certificates (`certutil`, Debian's libnss3-tools).
 */
function firefoxProfileTrusting(caFile) {
  const dir = mkdtempSync(join(tmpdir(), 'realtimer-firefox-profile-'));
  execFileSync('certutil', ['-N', '-d', `sql:${dir}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${dir}`, '-n', 'realtimer test CA', '-t', 'C,,', '-i', caFile]);
  return dir;
}
