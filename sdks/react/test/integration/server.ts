// One IdentSphere for the integration suite (default token lifetimes); tests that need other settings
// start their own with startIdentSphere.
import type { TestProject } from "vitest/node";

import { startIdentSphere } from "../../scripts/identsphere.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const server = await startIdentSphere();
  project.provide("baseUrl", server.baseUrl);
  return () => server.stop();
}
