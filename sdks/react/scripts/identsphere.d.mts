// Types of identsphere.mjs for the TypeScript tests.
export function identsphereBinary(options?: { build?: boolean }): string;
export function freePort(): Promise<number>;
export interface RunningIdentSphere {
  baseUrl: string;
  port: number;
  /** With `{platformKey: true}`: a platform API key (`isp_…`) minted before the start. */
  platformKey: string | undefined;
  stop(): Promise<void>;
}
export function startIdentSphere(
  env?: Record<string, string>,
  options?: { platformKey?: boolean; port?: number },
): Promise<RunningIdentSphere>;
export function metric(baseUrl: string, name: string, labels: Record<string, string>): Promise<number>;
