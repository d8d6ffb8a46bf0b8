/**
 * @opdbus/plugins-packages: installed packages (present, absent, at a version) as declared state
 * for op-dbus, through PackageKit over D-Bus.
 *
 * @packageDocumentation
 */
export { packagesErrors } from './errors.js';
export {
  PackageKit,
  parsePackageId,
  pkFilter,
  pkFlag,
  pkInfo,
  type PkPackage,
  type PkProgress,
  type RunOptions,
} from './packageKit.js';
export {
  createPackagesPlugin,
  packagesPlugin,
  packagesSchema,
  type PackageEntry,
  type PackageValue,
  type PackagesChange,
  type PackagesCheckpoint,
  type PackagesPlugin,
  type PackagesPluginOptions,
  type PackagesSection,
} from './plugin.js';
