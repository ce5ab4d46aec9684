// Types of demo.mjs for the TypeScript tests.
export interface RunningDemo {
  url: string;
  identsphereUrl: string;
  /** With `{platformKey: true}`: a platform API key of the demo's IdentSphere. */
  platformKey: string | undefined;
  stop(): Promise<void>;
}
export function startDemo(options?: {
  port?: number;
  identsphereUrl?: string;
  env?: Record<string, string>;
  platformKey?: boolean;
  crossOrigin?: boolean;
}): Promise<RunningDemo>;
