/// <reference types="vitest" />
// Vitest + Clarinet simnet, as in a `clarinet new` project.
//
// `environment: "clarinet"` (package vitest-environment-clarinet) builds the
// simnet from Clarinet.toml and exposes it as the global `simnet`; the setup
// file from @stacks/clarinet-sdk re-initialises the session before each test
// (fresh chain per test) and registers the Clarity value matchers
// (`toBeOk`, `toBeErr`, `toBeSome`, ...). Options after `--` are Clarinet's:
//   npx vitest run -- --coverage --costs
import { defineConfig } from "vitest/config";
import { vitestSetupFilePath, getClarinetVitestsArgv } from "@stacks/clarinet-sdk/vitest";

export default defineConfig({
  test: {
    environment: "clarinet",
    pool: "forks",
    poolOptions: {
      forks: { singleFork: true },
    },
    include: ["tests/**/*.test.ts"],
    setupFiles: [vitestSetupFilePath],
    environmentOptions: {
      clarinet: {
        ...getClarinetVitestsArgv(),
      },
    },
  },
});
