import { defineConfig } from 'vite';

// The dashboard is built into the Api's wwwroot (git-ignored); the Api serves it at /.
export default defineConfig({
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: '../wwwroot',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
    rollupOptions: {
      // @microsoft/signalr carries /*#__PURE__*/ comments that Rollup cannot place; harmless, so not printed.
      onwarn(warning, warn) {
        if (warning.code !== 'INVALID_ANNOTATION') warn(warning);
      },
    },
  },
});
