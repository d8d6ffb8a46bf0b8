import { isOpdbusError } from '@opdbus/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GenericNetlink, ctrlAttrs, defineAttributes, type Netns } from '../src/index.js';
import { dropAllNetns, freshNetns, describeAsRoot } from './helpers.js';

describeAsRoot('GenericNetlink', () => {
  let ns: Netns;
  let genl: GenericNetlink;
  beforeAll(() => {
    ns = freshNetns();
    genl = GenericNetlink.open({ netns: ns });
  });
  afterAll(() => {
    genl?.close();
    dropAllNetns();
  });

  it('resolves families by name (the controller itself has id 16) and lists them all', async () => {
    const ctrl = await genl.family('nlctrl');
    expect(ctrl).toMatchObject({ id: 16, name: 'nlctrl' });
    expect(ctrl.operations.map((o) => o.id)).toContain(3); // CTRL_CMD_GETFAMILY
    expect(ctrl.multicastGroups).toContainEqual({ name: 'notify', id: expect.any(Number) });
    const all = await genl.families();
    expect(all.map((f) => f.name)).toContain('nlctrl');
    for (const f of all) expect(await genl.family(f.name)).toEqual(f);
  });

  it('sends typed requests: GETFAMILY through request() with the controller attribute set', async () => {
    const replies = await genl.request<{ id: number; name: string }>('nlctrl', 3, {
      attributes: ctrlAttrs,
      data: { name: 'nlctrl' },
    });
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ command: 1, data: { id: 16, name: 'nlctrl' } }); // CTRL_CMD_NEWFAMILY
    const dump = await genl.request<{ name: string }>('nlctrl', 3, { attributes: ctrlAttrs, dump: true });
    expect(dump.map((m) => m.data.name)).toContain('nlctrl');
  });

  it('talks to another family when the kernel has one (ethtool: link state of lo)', async (context) => {
    const names = (await genl.families()).map((f) => f.name);
    if (!names.includes('ethtool')) context.skip('this kernel has no ethtool netlink family');
    const header = defineAttributes('ethtool_header', {
      devIndex: { type: 1, kind: 'u32' },
      devName: { type: 2, kind: 'string' },
    });
    const linkstate = defineAttributes('ethtool_linkstate', {
      header: { type: 1, kind: 'nested', set: () => header },
      link: { type: 2, kind: 'bool' },
    });
    // ETHTOOL_MSG_LINKSTATE_GET = 6; the reply names the device and says whether the link is up.
    const [reply] = await genl.request<{ header: { devName: string; devIndex: number }; link: boolean }>(
      'ethtool',
      6,
      {
        attributes: linkstate,
        data: { header: { devName: 'lo' } },
      },
    );
    expect(reply?.data).toMatchObject({ header: { devName: 'lo', devIndex: 1 }, link: true });
  });

  it('a family the kernel lacks is OPDBUS_ERR_GENL_FAMILY, with the errno', async () => {
    const err = await genl.family('opdbus-nofam').catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_GENL_FAMILY')).toBe(true);
    expect((err as Error).message).toContain('"opdbus-nofam" is not available');
    expect((err as { data: Record<string, unknown> }).data).toMatchObject({
      errno: 'ENOENT',
      errnoNumber: 2,
    });
  });
});
