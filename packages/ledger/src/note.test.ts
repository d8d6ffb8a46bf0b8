import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint } from './checkpoint.js';
import { EMPTY_ROOT } from './hash.js';
import {
  NoteSigner,
  NoteVerifier,
  addSignature,
  formatNote,
  keyIdOf,
  parseNote,
  verifyNote,
} from './note.js';

describe('C2SP signed notes', () => {
  const log = NoteSigner.generate('example.com/log');
  const witness = NoteSigner.generate('witness.example/w1');

  it('computes key ids as the spec says and round-trips keys in the NAME+ID+BASE64 format', () => {
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.from('example.com/log\n'), Buffer.from([0x01]), log.verifier.publicKey]))
      .digest()
      .readUInt32BE(0);
    expect(log.keyId).toBe(expected);
    expect(keyIdOf('example.com/log', 1, log.verifier.publicKey)).toBe(expected);
    const vkey = log.verifier.toString();
    expect(vkey).toMatch(new RegExp(`^example\\.com/log\\+${expected.toString(16).padStart(8, '0')}\\+A`));
    expect(NoteVerifier.parse(vkey).publicKey.equals(log.verifier.publicKey)).toBe(true);
    expect(NoteSigner.parse(log.toString()).verifier.toString()).toBe(vkey);
    expect(() => NoteVerifier.parse(vkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+'))).toThrow(/key id/);
    expect(() => new NoteVerifier('has space', log.verifier.publicKey)).toThrow(/key name/);
  });

  it('signs, carries witness cosignatures, ignores unknown keys and rejects a bad known signature', () => {
    const text = formatCheckpoint({ origin: 'example.com/log', size: 7, root: EMPTY_ROOT });
    const note = signCheckpoint({ origin: 'example.com/log', size: 7, root: EMPTY_ROOT }, log);
    expect(note.startsWith(`${text}\n— example.com/log `)).toBe(true);
    expect(parseNote(note).signatures[0]).toMatchObject({ name: 'example.com/log', keyId: log.keyId });
    const cosigned = addSignature(note, witness);
    expect(parseNote(cosigned).signatures.map((s) => s.name)).toEqual([
      'example.com/log',
      'witness.example/w1',
    ]);
    expect(verifyNote(cosigned, [log.verifier, witness.verifier]).verifiedBy).toHaveLength(2);
    expect(verifyNote(cosigned, [log.verifier]).verifiedBy).toEqual([log.verifier]); // the witness is unknown: ignored
    expect(openCheckpoint(cosigned, [witness.verifier]).checkpoint.size).toBe(7);
    expect(() => verifyNote(note, [witness.verifier])).toThrow(/not signed by a trusted key/);
    const forged = cosigned.replace('\n7\n', '\n8\n');
    expect(() => verifyNote(forged, [log.verifier])).toThrow(/does not verify/);
    // Same name, another key: a different key id, so an unknown signature, not the log's.
    const impostor = new NoteSigner('example.com/log', Buffer.alloc(32, 7));
    expect(() => verifyNote(formatNote({ text, signatures: [impostor.sign(text)] }), [log.verifier])).toThrow(
      /not signed by a trusted key/,
    );
  });

  it('parses and refuses malformed notes and checkpoints', () => {
    expect(() => parseNote('no blank line\n— a AAAAAAAA\n')).toThrow(/blank line/);
    expect(() => parseNote('text\n\n— a !!!\n')).toThrow(/Malformed/);
    expect(() => parseNote('te\u0001xt\n\n— a AAAAAAAA\n')).toThrow(/control/);
    expect(() => parseCheckpoint('origin\n01\nAAAA\n')).toThrow(/tree size/);
    expect(() => parseCheckpoint(`origin\n5\n${Buffer.alloc(31).toString('base64')}\n`)).toThrow(/root/);
    expect(() => parseCheckpoint(`origin\n5\n${EMPTY_ROOT.toString('base64')}`)).toThrow(/newline/);
    expect(parseCheckpoint(`o\n0\n${EMPTY_ROOT.toString('base64')}\next\n`)).toMatchObject({
      origin: 'o',
      size: 0,
      extensions: ['ext'],
    });
    const text = formatNote({ text: 'a\n\nb\n', signatures: [log.sign('a\n\nb\n')] });
    expect(verifyNote(text, [log.verifier]).note.text).toBe('a\n\nb\n'); // the last blank line separates
  });
});
