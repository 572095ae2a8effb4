// The SDK's debug switch. With MBEDLINK_DEBUG=1 in the environment (or
// setDebug(true), which the CLI's -v calls) the rpc layer logs every frame it
// sends and receives (op name, request id, size) and every call's duration on
// stderr. Off by default: call sites test `debug.enabled` before they format
// anything, so the cost when off is one property read per frame.

/** Whether frames and call durations are logged; read by the rpc layer before every log line. */
export const debug = { enabled: isOn(process.env.MBEDLINK_DEBUG) };

function isOn(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}

/** Turns the frame and timing log on or off for this process. */
export function setDebug(on: boolean): void {
  debug.enabled = on;
}

/** Writes one log line to stderr, prefixed with the time since the process started. */
export function debugLog(line: string): void {
  process.stderr.write(`[mbedlink ${performance.now().toFixed(1)} ms] ${line}\n`);
}
