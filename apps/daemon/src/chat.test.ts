import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseChatEndpoint, readChatKeyFile } from './chat.js';

const dir = mkdtempSync(join(tmpdir(), 'opdbusd-chat-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the chat configuration', () => {
  it('reads the key from a file of mode 0600 only', () => {
    const file = join(dir, 'key');
    writeFileSync(file, 'sk-abc\n');
    chmodSync(file, 0o644);
    expect(() => readChatKeyFile(file)).toThrow(/readable by group or others \(mode 644\); run chmod 600/);
    chmodSync(file, 0o600);
    expect(readChatKeyFile(file)).toBe('sk-abc');
    writeFileSync(file, '\n');
    expect(() => readChatKeyFile(file)).toThrow(/must hold the API key alone/);
    expect(() => readChatKeyFile(join(dir, 'absent'))).toThrow(
      expect.objectContaining({ code: 'OPDBUS_ERR_CHAT_CONFIG' }),
    );
  });

  it('takes http(s) endpoint URLs without credentials', () => {
    expect(parseChatEndpoint('https://llm.example/v1/chat/completions')).toBe(
      'https://llm.example/v1/chat/completions',
    );
    expect(() => parseChatEndpoint('llm.example')).toThrow(/is not a URL/);
    expect(() => parseChatEndpoint('file:///etc/passwd')).toThrow(/must be an http\(s\) URL/);
    expect(() => parseChatEndpoint('https://u:sk@llm.example/')).toThrow(/--chat-key-file/);
  });
});
