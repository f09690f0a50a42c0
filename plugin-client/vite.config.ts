// Builds the plugin UI into one self-contained dist/ui.html: Figma loads the UI
// from a string (__html__), so scripts and styles must be inlined.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { viteSingleFile } from 'vite-plugin-singlefile';

const uiRoot = fileURLToPath(new URL('./src/ui', import.meta.url));
const outDir = fileURLToPath(new URL('./dist', import.meta.url));

export default defineConfig({
  root: uiRoot,
  plugins: [viteSingleFile()],
  build: {
    outDir,
    // dist/code.js is written by esbuild; do not wipe it.
    emptyOutDir: false,
    target: 'es2020',
    rollupOptions: { input: fileURLToPath(new URL('./src/ui/ui.html', import.meta.url)) },
  },
});
