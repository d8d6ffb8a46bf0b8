import { describe, expect, it } from 'vitest';
import { EventBus } from './events.js';

describe('EventBus', () => {
  it('delivers in order to every subscriber', async () => {
    const bus = new EventBus<number>({ capacity: 8 });
    const a = bus.subscribe();
    const b = bus.subscribe();
    for (let i = 0; i < 5; i++) bus.publish(i);
    const take = async (s: AsyncIterator<number>, n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await s.next()).value as number);
      return out;
    };
    expect(await take(a, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(await take(b, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(bus.stats()).toMatchObject({ published: 5, dropped: 0, subscribers: 2 });
  });

  it('keeps at most `capacity` events for a slow subscriber and counts the drops', async () => {
    const bus = new EventBus<number>({ capacity: 4 });
    const slow = bus.subscribe();
    for (let i = 0; i < 100_000; i++) bus.publish(i);
    expect(slow.dropped).toBe(100_000 - 4);
    expect(bus.stats().dropped).toBe(100_000 - 4);
    // The newest `capacity` events survive, oldest first.
    const got: number[] = [];
    for (let i = 0; i < 4; i++) got.push((await slow.next()).value as number);
    expect(got).toEqual([99_996, 99_997, 99_998, 99_999]);
    const heap = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1_000_000; i++) bus.publish(i);
    // A million events into a 4-slot queue cannot grow memory by more than a few MB of garbage.
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(64 * 1024 * 1024);
    expect(slow.dropped).toBe(100_000 - 4 + 1_000_000 - 4);
  });

  it('hands an event straight to a waiting consumer', async () => {
    const bus = new EventBus<string>({ capacity: 1 });
    const sub = bus.subscribe();
    const pending = sub.next();
    bus.publish('x');
    bus.publish('y');
    expect((await pending).value).toBe('x');
    expect((await sub.next()).value).toBe('y');
    expect(sub.dropped).toBe(0);
  });

  it('ends iteration on close and forgets the subscriber', async () => {
    const bus = new EventBus<number>();
    const sub = bus.subscribe();
    const pending = sub.next();
    sub.close();
    expect((await pending).done).toBe(true);
    bus.publish(1);
    expect(bus.stats().subscribers).toBe(0);
    const seen: number[] = [];
    const sub2 = bus.subscribe();
    bus.publish(7);
    sub2.close();
    for await (const e of sub2) seen.push(e);
    expect(seen).toEqual([]);
  });

  it('isolates a throwing listener and counts it', () => {
    const bus = new EventBus<number>();
    const seen: number[] = [];
    bus.on(() => {
      throw new Error('boom');
    });
    const off = bus.on((e) => seen.push(e));
    bus.publish(1);
    off();
    bus.publish(2);
    expect(seen).toEqual([1]);
    expect(bus.stats().listenerErrors).toBe(2);
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new EventBus({ capacity: 0 })).toThrow(RangeError);
    expect(() => new EventBus({ capacity: 1.5 })).toThrow(RangeError);
  });
});
