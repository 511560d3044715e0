// Builds the extension from the root manifest.json: `vite build` into dist/ for Chromium,
// `vite build --mode firefox` into dist-firefox/ (load either unpacked). Paths inside the
// manifest are relative to extension/, the Vite root.
import { defineConfig } from 'vite';
import { crx } from '@crxjs/vite-plugin';
import manifest from './manifest.json' with { type: 'json' };
import { firefoxManifest } from './tools/firefox-manifest.ts';

export default defineConfig(({ mode }) => {
  const firefox = mode === 'firefox';
  return {
    root: 'extension',
    plugins: [firefox ? crx({ manifest: firefoxManifest(manifest) as never, browser: 'firefox' }) : crx({ manifest })],
    build: {
      outDir: firefox ? '../dist-firefox' : '../dist',
      emptyOutDir: true,
      target: firefox ? 'firefox128' : 'chrome116',
      minify: false,
      sourcemap: true,
      // Pages the manifest does not name (chrome.offscreen.createDocument opens this one).
      rollupOptions: firefox ? {} : { input: { offscreen: 'offscreen.html' } },
    },
    server: { port: 5173, strictPort: true },
  };
});
