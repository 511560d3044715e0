// Builds the extension from the root manifest.json into dist/ (load it unpacked). Paths inside
// the manifest are relative to extension/, the Vite root.
import { defineConfig } from 'vite';
import { crx } from '@crxjs/vite-plugin';
import manifest from './manifest.json' with { type: 'json' };

export default defineConfig({
  root: 'extension',
  plugins: [crx({ manifest })],
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'chrome116',
    minify: false,
    sourcemap: true,
    // Pages the manifest does not name (chrome.offscreen.createDocument opens this one).
    rollupOptions: { input: { offscreen: 'offscreen.html' } },
  },
  server: { port: 5173, strictPort: true },
});
