// Types of identsphere.mjs for the TypeScript tests.
export function identsphereBinary(options?: { build?: boolean }): string;
export function freePort(): Promise<number>;
export interface RunningIdentSphere {
  baseUrl: string;
  port: number;
  stop(): Promise<void>;
}
export function startIdentSphere(env?: Record<string, string>): Promise<RunningIdentSphere>;
export function metric(baseUrl: string, name: string, labels: Record<string, string>): Promise<number>;
