/**
 * @opdbus/plugins-timedate: the time zone and NTP as declared state for op-dbus, through
 * systemd-timedated (org.freedesktop.timedate1).
 *
 * @packageDocumentation
 */
export { timedateErrors } from './errors.js';
export {
  createTimedatePlugin,
  timedatePlugin,
  timedateSchema,
  type TimedateCheckpoint,
  type TimedatePlugin,
  type TimedateSection,
  type TimedateValue,
} from './plugin.js';
