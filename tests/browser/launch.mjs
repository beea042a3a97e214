// Headless Chromium as every browser test here starts it: Debian's binary
// (CHROMIUM_PATH overrides), no sandbox (CI runs as root), nothing that
// reaches the network on its own, and loopback candidates allowed (without
// that flag a loopback peer connection never opens). See INTEROP.md.
import { chromium } from 'playwright-core';

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

/** Launches headless Chromium with the common flags and `extra` ones. */
export function launchChromium(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [...BASE_FLAGS, ...extra],
  });
}
