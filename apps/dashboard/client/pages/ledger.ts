import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { api, type ApiError } from '../api.js';
import {
  fromHex,
  openCheckpoint,
  parseVerifierKey,
  verifyConsistency,
  verifyEntry,
  type Verdict,
} from '../ledgerVerify.js';
import { ErrorBox, Json, Page, html, useApi } from '../ui.js';
import type { CheckpointReport } from './types.js';

interface EntryRow {
  index: number;
  leafHash: string;
  entry: { kind?: string; at?: string; status?: string; actor?: { name?: string } } & Record<string, unknown>;
}

const PINNED = 'opdbus.ledger.pinnedKey';
const REMEMBERED = 'opdbus.ledger.checkpoint';

function VerdictView({ verdict, label }: { verdict: Verdict; label: string }): ComponentChildren {
  return html`<div class=${verdict.ok ? 'verdict ok' : 'verdict bad'} role="status" data-testid="verdict">
    <strong>${verdict.ok ? `✔ ${label}: verified in this browser` : `✘ ${label}: NOT verified`}</strong>
    <ul>
      ${verdict.steps.map((s) => html`<li>${s.ok ? '✔' : '✘'} ${s.label}: ${s.detail}</li>`)}
    </ul>
  </div>`;
}

/** Ledger: the timeline, each entry's inclusion proof and the checkpoint signature verified here with WebCrypto. */
export function LedgerPage(): ComponentChildren {
  const entries = useApi<{ size: number; entries: EntryRow[] }>('/v1/ledger/entries?limit=50', [
    'transaction',
    'correction',
    'drift',
  ]);
  const [pinned, setPinned] = useState(() => localStorage.getItem(PINNED) ?? '');
  const [keyInput, setKeyInput] = useState(pinned);
  const [tofu, setTofu] = useState(false);
  const [verdicts, setVerdicts] = useState<Record<number, Verdict>>({});
  const [consistency, setConsistency] = useState<Verdict | undefined>(undefined);
  const [open, setOpen] = useState<number | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);

  const pinnedKey = (cp: CheckpointReport): string => {
    if (pinned !== '') return pinned;
    // Trust on first use, said on the page: pin the key the daemon names now.
    localStorage.setItem(PINNED, cp.verifierKey);
    setPinned(cp.verifierKey);
    setKeyInput(cp.verifierKey);
    setTofu(true);
    return cp.verifierKey;
  };

  const verify = (index: number): void => {
    setError(undefined);
    void (async () => {
      const cp = await api<CheckpointReport>('/v1/ledger/checkpoint');
      const key = pinnedKey(cp);
      const [proof, row] = await Promise.all([
        api<{ size: number; proof: string[] }>(`/v1/ledger/proofs/${index}?size=${cp.size}`),
        api<EntryRow>(`/v1/ledger/entries/${index}`),
      ]);
      const verdict = await verifyEntry({
        index,
        entry: row.entry,
        proof,
        checkpointNote: cp.note,
        pinnedKey: key,
      });
      setVerdicts((v) => ({ ...v, [index]: verdict }));
    })().catch((e: unknown) => setError(e instanceof Error ? e : new Error(String(e))));
  };

  const checkConsistency = (): void => {
    setError(undefined);
    void (async () => {
      const cp = await api<CheckpointReport>('/v1/ledger/checkpoint');
      const key = await parseVerifierKey(pinnedKey(cp));
      const steps: Verdict['steps'] = [];
      const current = await openCheckpoint(cp.note, key);
      steps.push({
        label: 'current checkpoint',
        ok: true,
        detail: `size ${current.size}, signature verified`,
      });
      const rememberedNote = localStorage.getItem(REMEMBERED);
      if (rememberedNote === null) {
        localStorage.setItem(REMEMBERED, cp.note);
        steps.push({
          label: 'remembered checkpoint',
          ok: true,
          detail: 'none yet: this one is remembered for the next check',
        });
        setConsistency({ ok: true, steps });
        return;
      }
      const old = await openCheckpoint(rememberedNote, key);
      steps.push({
        label: 'remembered checkpoint',
        ok: true,
        detail: `size ${old.size}, signature verified`,
      });
      const proof = await api<{ proof: string[] }>(
        `/v1/ledger/consistency?from=${old.size}&to=${current.size}`,
      );
      const ok = await verifyConsistency(
        old.size,
        current.size,
        proof.proof.map(fromHex),
        fromHex(old.root),
        fromHex(current.root),
      );
      steps.push({
        label: 'consistency proof',
        ok,
        detail: ok
          ? `the log of ${current.size} entries extends the one of ${old.size}: nothing was rewritten`
          : `the log of ${current.size} entries does NOT extend the remembered one of ${old.size}`,
      });
      if (ok) localStorage.setItem(REMEMBERED, cp.note);
      setConsistency({ ok, steps });
    })().catch((e: unknown) =>
      setConsistency({
        ok: false,
        steps: [{ label: 'checkpoints', ok: false, detail: e instanceof Error ? e.message : String(e) }],
      }),
    );
  };

  const savePin = (e: Event): void => {
    e.preventDefault();
    void parseVerifierKey(keyInput).then(
      () => {
        localStorage.setItem(PINNED, keyInput.trim());
        setPinned(keyInput.trim());
        setTofu(false);
        setVerdicts({});
      },
      (err: unknown) => setError(err instanceof Error ? err : new Error(String(err))),
    );
  };

  const rows = [...(entries.data?.entries ?? [])].reverse();
  return html`<${Page} title="Ledger">
    <form class="toolbar" onSubmit=${savePin}>
      <label for="pinned-key">Pinned verifier key</label>
      <input id="pinned-key" class="wide" value=${keyInput} placeholder="NAME+KEYID+BASE64 (from opdbus ledger key)" onInput=${(e: Event) => setKeyInput((e.target as HTMLInputElement).value)} />
      <button type="submit">Pin</button>
    </form>
    ${tofu ? html`<p class="note" role="status">No key was pinned: the daemon's current key was pinned on first use. Compare it with the host's key (<code>opdbus ledger key</code>) or paste that one.</p>` : null}
    <${ErrorBox} error=${entries.error ?? (error as ApiError | undefined)} />
    <div class="toolbar"><button type="button" onClick=${checkConsistency}>Check consistency with the remembered checkpoint</button></div>
    ${consistency ? html`<${VerdictView} verdict=${consistency} label="consistency" />` : null}
    <p>${entries.data?.size ?? '…'} entries; the newest 50:</p>
    <ol class="timeline" reversed>${rows.map(
      (r) =>
        html`<li data-index=${r.index}>
          <div class="row">
            <span class="idx">#${r.index}</span>
            <span class="badge">${r.entry.kind ?? '?'}</span>
            <span>${r.entry.status ?? ''}</span>
            <span>${r.entry.actor?.name ?? ''}</span>
            <time>${r.entry.at ? new Date(r.entry.at).toLocaleString() : ''}</time>
            <button
              type="button"
              class="link"
              aria-expanded=${open === r.index}
              onClick=${() => setOpen(open === r.index ? undefined : r.index)}
            >
              details
            </button>
            <button type="button" onClick=${() => verify(r.index)} aria-label=${`Verify entry ${r.index}`}>
              Verify
            </button>
          </div>
          ${verdicts[r.index] ? html`<${VerdictView} verdict=${verdicts[r.index]} label=${`entry ${r.index}`} />` : null}
          ${open === r.index ? html`<${Json} value=${r.entry} />` : null}
        </li>`,
    )}</ol>
  </${Page}>`;
}
