/**
 * Why a runtime could not start. The runtime has already written `Error: <message>` to its own log (when
 * `logged`) and closed whatever it had opened; the caller decides where else the reason goes (the CLI: the
 * terminal, when the log is a file, a topic or /dev/null).
 */
export class StartFailure extends Error {
  readonly code = 'SRV_ERR_START'
  constructor(
    message: string,
    /** False only when the log itself could not be opened: the reason is in no log yet. */
    readonly logged: boolean,
    /** The log the message went to includes stderr. */
    readonly onStderr: boolean,
  ) {
    super(message)
    this.name = 'StartFailure'
  }
}

/** A phase of the start refuses to go on, for the reason in `message` (logged by the runtime as `Error: …`). */
export class Refused extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'Refused'
  }
}
