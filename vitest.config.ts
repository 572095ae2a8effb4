import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    alias: { mbedlink: fileURLToPath(new URL("./host/src/index.ts", import.meta.url)) },
  },
  test: {
    include: ["host/**/*.test.ts", "hil/**/*.test.ts", "test/**/*.test.ts", "protocol/**/*.test.ts"],
    // serialport's native binding is safest in child processes, not worker threads.
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
