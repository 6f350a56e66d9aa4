declare module 'libqp' {
  /** Decodes a quoted-printable string into the bytes it stands for. */
  export function decode(str: string): Buffer;
}
