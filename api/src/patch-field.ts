/** A request's `patch` field, parsed by the one mail parser the worker applies with. */
import { MboxError, parseMbox, type ParsedMbox } from '@nommu-ci/shared';
import { HttpError } from './errors.js';

export function parsePatchField(text: string): ParsedMbox {
  try {
    return parseMbox(text);
  } catch (e) {
    if (e instanceof MboxError) throw new HttpError(400, `body.patch: ${e.message}`);
    throw e;
  }
}
