import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the ovs plugin (documented in docs/errors.md). */
export const ovsErrors = defineErrorCodes({
  OPDBUS_ERR_OVS_CONFLICT: {
    summary:
      'Open vSwitch changed under op-dbus: a resource differs from what the plan was computed from, or another writer changed it before the transaction committed (its `wait` guard failed). Nothing was changed.',
    remedy: 'Run `opdbus diff` again to see the current state, then apply again.',
  },
  OPDBUS_ERR_OVS_TRANSACTION: {
    summary:
      'ovsdb-server refused the transaction (e.g. "constraint violation" for a duplicate name); `data.error` and `data.details` are OVSDB\'s own. Nothing was changed.',
    remedy: 'Read the OVSDB error and the change it names, correct the state document, and apply again.',
  },
  OPDBUS_ERR_OVS_VSWITCHD_TIMEOUT: {
    summary: 'ovs-vswitchd did not apply the new configuration in time (`cur_cfg` did not reach `next_cfg`).',
    remedy:
      'Check that ovs-vswitchd runs and its log (`/var/log/openvswitch/ovs-vswitchd.log`); the transaction was rolled back.',
  },
  OPDBUS_ERR_OVS_INTERFACE: {
    summary:
      'ovs-vswitchd could not set up an interface (its `error` column, e.g. "could not open network device p9 (No such device)").',
    remedy:
      'Create the device first (a system interface must exist), check the interface type and options, or use `type: internal`.',
  },
  OPDBUS_ERR_OVS_LOCKED: {
    exit: 'CONFLICT',
    summary: 'Another op-dbus holds the OVSDB lock "opdbus" and did not release it in time.',
    remedy: 'Wait for the other op-dbus to finish, then apply again.',
  },
  OPDBUS_ERR_OVS_INVALID: {
    summary:
      'The ovs section asks for something Open vSwitch cannot do (a port on two bridges, a port left without interfaces, a port that exists on another bridge). The message names the place in the state document.',
    remedy: 'Correct the state document at the path given.',
  },
});
