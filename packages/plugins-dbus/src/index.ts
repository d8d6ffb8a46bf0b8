/**
 * @opdbus/plugins-dbus: the properties of any D-Bus service as op-dbus state, without generated
 * code. The `dbus` section (`createDbusServicesPlugin`) covers every service a state document
 * names by bus name; `createDbusAutoPlugin` makes a plugin of its own for one service.
 *
 * @packageDocumentation
 */
export {
  autoSectionSchema,
  createDbusAutoPlugin,
  type AutoCheckpoint,
  type AutoSection,
  type DbusAutoPluginOptions,
} from './autoPlugin.js';
export {
  createDbusServicesPlugin,
  isWellKnownBusName,
  type DbusServicesCheckpoint,
  type DbusServicesPluginOptions,
  type DbusServicesSection,
} from './servicesPlugin.js';
