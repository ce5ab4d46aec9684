// Types of demo.mjs for the TypeScript tests.
export interface RunningDemo {
  url: string;
  identsphereUrl: string;
  stop(): Promise<void>;
}
export function startDemo(options?: {
  port?: number;
  identsphereUrl?: string;
  env?: Record<string, string>;
}): Promise<RunningDemo>;
