// The exit codes live in @opdbus/runtime (every op-dbus app exits with the same codes); the
// subpath imports nothing else, so `opdbus --help` stays fast.
export { exitCodeFor, exitCodes, type ExitName } from '@opdbus/runtime/exit-codes';
