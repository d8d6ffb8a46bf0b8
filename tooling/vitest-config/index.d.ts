import type { UserWorkspaceConfig } from 'vitest/config';
export declare function project(name: string, test?: UserWorkspaceConfig['test']): UserWorkspaceConfig;
