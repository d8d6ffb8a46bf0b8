import { defineErrorCodes } from '@opdbus/core';

/** Error codes of @opdbus/ml (documented in docs/errors.md). */
export const mlErrors = defineErrorCodes({
  OPDBUS_ERR_ML_INPUT: {
    exit: 'INVALID_INPUT',
    summary:
      'A change-event or state input is not what it must be: a line that is not JSON, or an object without the fields of a change event (at, host, actor, plugin, resource, op, before, after).',
    remedy:
      'Fix or remove the line the message names (file and line number); `opdbus ledger export-changes` writes the expected form.',
  },
  OPDBUS_ERR_ML_READ: {
    exit: 'INVALID_INPUT',
    summary: 'An input file (history, test events, labels, states) could not be read.',
    remedy: 'Check that the file named in the message exists and is readable.',
  },
  OPDBUS_ERR_ML_EMPTY: {
    exit: 'INVALID_INPUT',
    summary: 'There is nothing to learn from: the training history has too few change events.',
    remedy:
      'Train on a longer history (at least 50 change events; a few weeks of a fleet is what the detectors are built for).',
  },
  OPDBUS_ERR_ML_MODEL_MISSING: {
    exit: 'NOT_FOUND',
    summary: 'The model directory does not exist or holds no model (model.json).',
    remedy: 'Train one first with `opdbus anomaly train --history FILE --model DIR`, or point --model at it.',
  },
  OPDBUS_ERR_ML_MODEL_VERSION: {
    exit: 'INVALID_INPUT',
    summary:
      'The model directory was written by another version of @opdbus/ml (another format version or embedder) and cannot be read by this one.',
    remedy: 'Retrain the model with this version (`opdbus anomaly train`); the message names both versions.',
  },
  OPDBUS_ERR_ML_MODEL_CORRUPT: {
    exit: 'INVALID_INPUT',
    summary: 'A file of the model directory is missing or does not parse, although model.json is present.',
    remedy:
      'The directory was changed by hand or by another tool: retrain it. (op-dbus writes a model to a temporary directory and renames it, so it never leaves one half-written.)',
  },
  OPDBUS_ERR_ML_MODEL_WRITE: {
    exit: 'STATE_DIR',
    summary: 'The model directory could not be written.',
    remedy:
      'Check that the parent directory exists and is writable; nothing was left half-written (the model is written to a temporary directory and renamed).',
  },
  OPDBUS_ERR_ML_LABELS: {
    exit: 'INVALID_INPUT',
    summary:
      'The labels file does not match the test events: not JSON, not an array of 0/1 (or an object with `labels`), or not one label per test event.',
    remedy:
      'Write one label per line of the test file: `[0, 1, …]` or `{ "labels": [...], "kinds": [...] }` as `opdbus anomaly generate` does.',
  },
  OPDBUS_ERR_ML_BACKEND: {
    exit: 'UNAVAILABLE',
    summary: 'No TensorFlow.js backend could be started for the autoencoder.',
    remedy:
      'Reinstall @opdbus/ml (its @tensorflow/tfjs and -backend-wasm dependencies); the message lists what each backend said.',
  },
  OPDBUS_ERR_ML_EMBEDDER: {
    exit: 'INVALID_INPUT',
    summary:
      'An embedder returned a vector of the wrong dimension, or a model was trained with another embedder.',
    remedy: 'Use an embedder with the dimension of the model (384 by default), or retrain the model with it.',
  },
});

/** An error code of @opdbus/ml. */
export type MlErrorCode = keyof typeof mlErrors;
