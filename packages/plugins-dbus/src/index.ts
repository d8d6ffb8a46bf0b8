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
  type AutoChange,
  type AutoCheckpoint,
  type AutoPlugin,
  type AutoPropertyWrite,
  type AutoSection,
  type AutoValue,
  type DbusAutoPluginOptions,
} from './autoPlugin.js';
export {
  createDbusServicesPlugin,
  isWellKnownBusName,
  type DbusServicesChange,
  type DbusServicesCheckpoint,
  type DbusServicesPlugin,
  type DbusServicesPluginOptions,
  type DbusServicesSection,
  type DbusServicesValue,
  type ServicePropertyWrite,
} from './servicesPlugin.js';
