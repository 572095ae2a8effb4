// mbedlink host SDK: public entry point.

export type { AeadMode, CipherFamilyInfo, CipherOptions, PlainMode } from "./cipher.js";
export {
  AEADCipher,
  Cipher,
  CipherFamily,
  CipherModule,
  MODE_CBC,
  MODE_CCM,
  MODE_CFB,
  MODE_CHACHAPOLY,
  MODE_CTR,
  MODE_ECB,
  MODE_GCM,
  MODE_OFB,
  MODE_STREAM,
  MODE_XTS,
} from "./cipher.js";
export { setDebug } from "./debug.js";
export type { DeviceEventMap, DeviceInfo, DeviceOptions, DeviceStats, OpenOptions, TargetOpenOptions, VersionInfo } from "./device.js";
export { Device, open } from "./device.js";
export * from "./errors.js";
export { Hash, HashModule } from "./hash.js";
export { HkdfModule } from "./hkdf.js";
export type { HmacOptions } from "./hmac.js";
export { Hmac, HmacModule } from "./hmac.js";
export type { StaticEcdhKey } from "./kex.js";
export { DEFAULT_ECDH_CURVE, DHBase, DHClient, DHServer, ECDHBase, ECDHClient, ECDHServer, KeyExchange } from "./kex.js";
export { KeysModule, SymmetricKey } from "./keys.js";
export type { PrimeOptions } from "./mpi.js";
export { bitLength, byteLength, fromBytes, LONG_OP_TIMEOUT_MS, MpiModule, toBytes } from "./mpi.js";
export type { PemBlock } from "./pem.js";
export { pemDecode, pemEncode } from "./pem.js";
export type { ECCFactory, ImportOptions, RSAFactory } from "./pk.js";
export { PkModule } from "./pk.js";
export type {
  EncryptionPadding,
  EncryptOptions,
  GenerateOptions,
  PkInfo,
  PrivateKeyFormat,
  PublicKeyFormat,
  SignatureScheme,
  SignOptions,
} from "./pk-key.js";
export { ECC, PkKey, RSA } from "./pk-key.js";
export { RandomModule } from "./random.js";
export type { BusyInfo, CallOptions, FrameDropInfo, ResetInfo } from "./rpc.js";
export type { SlotInfo, StoreOptions } from "./slots.js";
export { SlotsModule } from "./slots.js";
export { fromHex, hex, utf8 } from "./util.js";
