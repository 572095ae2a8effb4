// mbedlink host SDK: public entry point.
export type { DeviceEventMap, DeviceInfo, DeviceOptions, DeviceStats, OpenOptions, TargetOpenOptions, VersionInfo } from "./device.js";
export { Device, open } from "./device.js";
export * from "./errors.js";
export { Hash, HashModule } from "./hash.js";
export { HkdfModule } from "./hkdf.js";
export type { HmacOptions } from "./hmac.js";
export { Hmac, HmacModule } from "./hmac.js";
export { RandomModule } from "./random.js";
export type { CallOptions, FrameDropInfo, ResetInfo } from "./rpc.js";
export { fromHex, hex, utf8 } from "./util.js";
