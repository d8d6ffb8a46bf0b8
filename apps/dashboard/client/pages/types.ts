// What the daemon's API answers (the parts the pages read).

export interface Change {
  id: string;
  plugin: string;
  resource: string;
  op: 'create' | 'update' | 'delete';
  before: unknown;
  after: unknown;
  risk?: { reason: string };
  summary: string;
}

export interface Plan {
  hash: string;
  changes: Change[];
}

export interface DriftItem {
  key: string;
  plugin: string;
  resource: string;
  op: string;
  summary: string;
  before: unknown;
  after: unknown;
  mode: string;
  authority: string;
  state: 'open' | 'correcting' | 'held' | 'failed';
  since: string;
  lastSeen: string;
  error?: string;
}

export interface DriftReport {
  drift: DriftItem[];
  holds: { key: string; until?: string; reason?: string }[];
  baselines: { txId: string; actor: string; keys: string[] }[];
}

export interface TransactionSummary {
  txId: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  actor?: unknown;
  changes: number;
  planHash: string;
  plugins: string[];
  deadline?: string;
  failure?: unknown;
  restore?: { ok: boolean; reason?: string };
}

export interface StateReport {
  daemon: {
    status: string;
    detail?: string;
    drift: number;
    holds: number;
    desired?: string;
    mode: string;
    startedAt: string;
    version: string;
  };
  desired: { source: string; plugins: Record<string, unknown> } | null;
  observed: Record<string, unknown>;
}

export interface CheckpointReport {
  origin: string;
  size: number;
  root: string;
  note: string;
  verifierKey: string;
}

/** GET /v1/drift/history: drift per hour from the ledger. */
export interface DriftHistory {
  from: string;
  to: string;
  hours: { at: number; detected: number; corrected: number; held: number; failed: number }[];
  totals: { detected: number; corrected: number; held: number; failed: number };
  entriesRead: number;
}
